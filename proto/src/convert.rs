//! Conversions between protobuf's well-known types and Rust values.
//!
//! Payloads, workloads and results travel as `google.protobuf.Struct` so that
//! grpcurl and other clients see plain JSON. Protobuf has a single number
//! type (a double), so a number with no fractional part that fits in an
//! `i64` comes back as an integer: `3` stays `3`, not `3.0`.

use prost_types::{Duration, ListValue, Struct, Timestamp, Value, value::Kind};
use serde_json::{Map, Number, Value as Json};

/// Converts a JSON value into a protobuf `Value`.
pub fn to_value(json: &Json) -> Value {
    let kind = match json {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        Json::Object(map) => Kind::StructValue(to_struct(map)),
    };
    Value { kind: Some(kind) }
}

/// Converts a JSON object into a protobuf `Struct`.
pub fn to_struct(map: &Map<String, Json>) -> Struct {
    Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
    }
}

/// Converts a JSON value into a `Struct`; anything but an object becomes an
/// empty one.
pub fn to_struct_value(json: &Json) -> Struct {
    match json {
        Json::Object(map) => to_struct(map),
        _ => Struct::default(),
    }
}

/// Converts a protobuf `Value` into JSON.
pub fn from_value(value: &Value) -> Json {
    match &value.kind {
        None | Some(Kind::NullValue(_)) => Json::Null,
        Some(Kind::BoolValue(b)) => Json::Bool(*b),
        Some(Kind::NumberValue(n)) => number(*n),
        Some(Kind::StringValue(s)) => Json::String(s.clone()),
        Some(Kind::ListValue(list)) => Json::Array(list.values.iter().map(from_value).collect()),
        Some(Kind::StructValue(s)) => Json::Object(from_struct(s)),
    }
}

/// Converts a protobuf `Struct` into a JSON object.
pub fn from_struct(s: &Struct) -> Map<String, Json> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), from_value(v)))
        .collect()
}

/// Whole numbers in `i64` range become JSON integers; the rest stay floats.
/// Non-finite numbers, which JSON cannot hold, become null.
fn number(n: f64) -> Json {
    const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53: every integer below is exact
    if n.fract() == 0.0 && n.abs() <= LIMIT {
        #[allow(clippy::cast_possible_truncation)]
        return Json::Number(Number::from(n as i64));
    }
    Number::from_f64(n).map_or(Json::Null, Json::Number)
}

/// Converts a `std::time::Duration` into a protobuf `Duration`.
pub fn to_duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

/// Converts a protobuf `Duration` into a `std::time::Duration`; negative
/// durations become zero.
pub fn from_duration(d: &Duration) -> std::time::Duration {
    if d.seconds < 0 || d.nanos < 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(d.seconds.unsigned_abs(), d.nanos.unsigned_abs())
}

/// Converts milliseconds since the Unix epoch into a protobuf `Timestamp`.
pub fn timestamp_from_millis(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or(0),
    }
}

/// Converts a protobuf `Timestamp` into milliseconds since the Unix epoch.
pub fn timestamp_to_millis(ts: &Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos) / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_with_integers_kept_whole() {
        let original = json!({"n": 3, "x": 1.5, "s": "a", "l": [true, null], "o": {"k": -7}});
        assert_eq!(from_value(&to_value(&original)), original);
    }

    #[test]
    fn durations_round_trip_to_the_millisecond() {
        let d = std::time::Duration::from_millis(1_234);
        assert_eq!(from_duration(&to_duration(d)), d);
    }

    #[test]
    fn timestamps_round_trip_before_and_after_the_epoch() {
        for ms in [-1_500, 0, 1_700_000_000_123] {
            assert_eq!(timestamp_to_millis(&timestamp_from_millis(ms)), ms);
        }
    }
}
