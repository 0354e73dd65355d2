"""Baton's python task runner: runs one attempt of a `python` task.

The worker starts one CPython process per attempt with this script and
writes a JSON envelope to its stdin:

    {"code": str, "filename": str, "result_path": str,
     "memory_limit": int | null,
     "inputs": {"with": {}, "workload": {}, "results": {}, "context": {}}}

It executes `code`, calls its `main` with the arguments its signature asks
for, and writes one JSON object to `result_path` (never to stdout, which
belongs to the code's own prints):

    {"ok": true, "data": <return value>}
    {"ok": false, "error": {"type": str, "message": str, "traceback": str}}
"""

import asyncio
import inspect
import json
import linecache
import sys
import traceback

try:
    import resource
except ImportError:  # not on every platform; then there is no limit
    resource = None

EMPTY = inspect.Parameter.empty
NAMED = (
    inspect.Parameter.POSITIONAL_ONLY,
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    inspect.Parameter.KEYWORD_ONLY,
)


def limit_memory(limit):
    # Set here, in the child, so the worker needs no unsafe pre-exec hook.
    if limit and resource is not None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def merged_inputs(inputs):
    # Later sources win: `with` over workload over results over context.
    merged = {}
    for source in ("context", "results", "workload", "with"):
        merged.update(inputs.get(source) or {})
    return merged


def call_arguments(main, merged):
    params = list(inspect.signature(main).parameters.values())
    named = [p for p in params if p.kind in NAMED]
    var_keyword = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params)
    lone = len(named) == 1 and not var_keyword
    args, kwargs = [], {}
    for param in named:
        if param.name in merged:
            value = merged[param.name]
        elif param.name == "input_data" or (lone and param.default is EMPTY):
            value = merged
        elif param.default is not EMPTY:
            continue
        else:
            raise TypeError(
                f"main() needs '{param.name}', which is not in with, "
                "workload, results or the job context"
            )
        if param.kind == inspect.Parameter.POSITIONAL_ONLY:
            args.append(value)
        else:
            kwargs[param.name] = value
    if var_keyword:
        taken = {p.name for p in named}
        kwargs.update({k: v for k, v in merged.items() if k not in taken})
    return args, kwargs


def run(envelope):
    filename = envelope["filename"]
    code = envelope["code"]
    # Registered so tracebacks show the code's own lines.
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    namespace = {"__name__": "__baton__"}
    exec(compile(code, filename, "exec"), namespace)
    main = namespace.get("main")
    if not callable(main):
        raise NameError("the code defines no main function")
    args, kwargs = call_arguments(main, merged_inputs(envelope["inputs"]))
    result = main(*args, **kwargs)
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return result


async def _await(awaitable):
    return await awaitable


def describe(exc, filename):
    tb = exc.__traceback__
    # Drop this runner's frames: the trace starts in the task's code.
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    lines = traceback.format_exception(type(exc), exc, tb or exc.__traceback__)
    return {
        "type": type(exc).__name__,
        # Some exceptions (a bare MemoryError) have no text; the type is
        # better than an empty message.
        "message": str(exc) or type(exc).__name__,
        "traceback": "".join(lines),
    }


def encode(value):
    try:
        return json.dumps({"ok": True, "data": value}, allow_nan=False)
    except (TypeError, ValueError) as exc:
        error = {
            "type": type(exc).__name__,
            "message": f"main() returned a value JSON cannot hold: {exc}",
            "traceback": "",
        }
        return json.dumps({"ok": False, "error": error})


def main():
    envelope = json.load(sys.stdin)
    limit_memory(envelope.get("memory_limit"))
    try:
        text = encode(run(envelope))
    except BaseException as exc:  # the task's failure, whatever it is
        text = json.dumps({"ok": False, "error": describe(exc, envelope["filename"])})
    with open(envelope["result_path"], "w", encoding="utf-8") as out:
        out.write(text)


main()
