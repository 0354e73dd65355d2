//! The python executor against the real CPython: how `main` is called,
//! how failures, prints, timeouts and the memory limit come back.

mod support;

use baton_worker::executor::ErrorKind;
use serde_json::{Value, json};
use support::gate::{self, Gate};
use support::{executors, task};

async fn run(code: &str, extra: Value) -> baton_worker::executor::TaskOutput {
    let mut payload = json!({"code": code});
    payload
        .as_object_mut()
        .unwrap()
        .extend(support::object(extra));
    executors().execute(&task("python", payload)).await
}

#[tokio::test]
async fn main_without_arguments_returns_its_value_as_data() {
    let output = run("def main():\n    return {'n': 42}\n", json!({})).await;
    assert_eq!(output.error, None);
    assert_eq!(output.result["data"], json!({"n": 42}));
}

#[tokio::test]
async fn input_data_is_every_source_merged_with_with_winning() {
    let code = "def main(input_data):\n    return input_data\n";
    let mut task = task("python", json!({"code": code, "with": {"a": 1}}));
    task.context = support::object(json!({
        "workload": {"a": 0, "b": 2},
        "fetch": {"data": [1, 2]},
    }));
    let output = executors().execute(&task).await;
    let data = &output.result["data"];
    assert_eq!(data["a"], 1);
    assert_eq!(data["b"], 2);
    assert_eq!(data["fetch"], json!({"data": [1, 2]}));
    assert_eq!(
        (data["attempt"].clone(), data["step"].clone()),
        (json!(1), json!("probe"))
    );
}

#[tokio::test]
async fn kwargs_receive_every_name() {
    let code = "def main(**kwargs):\n    return sorted(kwargs)\n";
    let output = run(code, json!({"data": {"city": "Oslo"}})).await;
    let names = output.result["data"].as_array().unwrap().clone();
    for name in [
        "attempt",
        "city",
        "execution_id",
        "job_id",
        "max_attempts",
        "step",
    ] {
        assert!(
            names.contains(&json!(name)),
            "{name} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn named_parameters_are_bound_by_name_from_every_source() {
    let code = "def main(city, fetch, attempt, job_id, unit='C'):\n    \
                return [city, fetch['data'], attempt, job_id, unit]\n";
    let mut task = task("python", json!({"code": code, "with": {"city": "Lima"}}));
    task.context = support::object(json!({"workload": {}, "fetch": {"data": 9}}));
    let output = executors().execute(&task).await;
    assert_eq!(output.error, None);
    assert_eq!(output.result["data"], json!(["Lima", 9, 1, 7, "C"]));
}

#[tokio::test]
async fn a_parameter_nobody_provides_fails_naming_it() {
    let output = run("def main(missing, other):\n    return 1\n", json!({})).await;
    let error = output.error.unwrap();
    assert_eq!(error.error_type, "TypeError");
    assert!(error.message.contains("'missing'"), "{}", error.message);
}

#[tokio::test]
async fn an_exception_carries_its_type_message_and_traceback() {
    let code = "def helper():\n    raise ValueError('bad value')\n\n\
                def main():\n    helper()\n";
    let output = run(code, json!({})).await;
    let error = output.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Exception);
    assert_eq!(
        (error.error_type.as_str(), error.message.as_str()),
        ("ValueError", "bad value")
    );
    assert!(
        error
            .traceback
            .contains("File \"<probe>\", line 2, in helper"),
        "{}",
        error.traceback
    );
    assert!(error.traceback.contains("raise ValueError('bad value')"));
    assert!(
        !error.traceback.contains("call_arguments"),
        "runner frames leaked"
    );
}

#[tokio::test]
async fn prints_do_not_corrupt_the_result_and_are_kept() {
    let code = "import sys\n\ndef main():\n    print('{\"ok\": false}')\n    \
                print('warn', file=sys.stderr)\n    return 'fine'\n";
    let output = run(code, json!({})).await;
    assert_eq!(output.error, None);
    assert_eq!(output.result["data"], "fine");
    assert_eq!(output.result["stdout"], "{\"ok\": false}\n");
    assert_eq!(output.result["stderr"], "warn\n");
}

#[tokio::test]
async fn only_the_tail_of_a_long_output_is_kept() {
    let code = "def main():\n    print('x' * 200_000 + 'END')\n";
    let output = run(code, json!({})).await;
    let stdout = output.result["stdout"].as_str().unwrap();
    assert_eq!(stdout.len(), 64 * 1024);
    assert!(stdout.ends_with("END\n"));
}

#[tokio::test]
async fn a_return_value_json_cannot_hold_is_a_failure() {
    let output = run("def main():\n    return {1, 2}\n", json!({})).await;
    assert_eq!(output.error.unwrap().error_type, "TypeError");
}

#[tokio::test]
async fn a_timeout_kills_the_process() {
    let gate = Gate::open().await;
    let with = json!({"port": gate.workload()["port"]});
    // Long enough for CPython to start and connect on a loaded machine.
    let payload = json!({"with": with, "timeout": 5.0});
    let (output, mut held) = tokio::join!(run(gate::CODE, payload), gate.accept());
    assert_eq!(output.error.unwrap().kind, ErrorKind::Timeout);
    held.exited().await;
}

#[tokio::test]
async fn a_huge_allocation_becomes_a_memory_error() {
    let code = "def main():\n    blob = bytearray(2 * 1024 ** 3)\n    return len(blob)\n";
    let output = run(code, json!({})).await;
    let error = output.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Exception);
    assert_eq!(error.error_type, "MemoryError");
}

#[tokio::test]
async fn async_main_is_awaited() {
    let code = "import asyncio\n\nasync def main():\n    await asyncio.sleep(0)\n    return 5\n";
    assert_eq!(run(code, json!({})).await.result["data"], 5);
}

#[tokio::test]
async fn a_task_without_code_is_invalid() {
    let output = executors().execute(&task("python", json!({}))).await;
    assert_eq!(output.error.unwrap().kind, ErrorKind::InvalidTask);
}
