//! The `smithy-rpc-v2-cbor` protocol (CloudWatch, as current botocore speaks it):
//! `POST /service/<Service>/operation/<Operation>` with a CBOR body; answers in CBOR with the
//! `smithy-protocol: rpc-v2-cbor` header; errors as a CBOR map holding `__type` and `message`.
//! Pure framing; no handler logic.
//!
//! Requests decode into a `serde_json::Value`, so a service shares its typed inputs with its
//! JSON protocol: CBOR timestamps (tag 1) become epoch-second numbers, as JSON sends them, and
//! byte strings become base64 text, as JSON sends blobs. Answers encode from a
//! `serde_json::Value` plus the names of the members that are timestamps, which go out as tag 1
//! around the epoch seconds — the form botocore's parser turns back into datetimes.

use crate::error::ApiError;
use base64::Engine;
use serde_json::{Map, Number, Value};

/// Content type of CBOR requests and answers.
pub const CONTENT_TYPE: &str = "application/cbor";
/// The header every answer carries, and its value.
pub const PROTOCOL_HEADER: (&str, &str) = ("smithy-protocol", "rpc-v2-cbor");

/// How deep arrays and maps may nest in a request: a bound on the decoder's recursion.
const MAX_DEPTH: usize = 64;
/// The "break" byte ending an indefinite-length item.
const BREAK: u8 = 0xff;

/// The body of an error answer: `{"__type": type_name, "message": message}`.
pub fn error_body_named(type_name: &str, message: &str) -> Vec<u8> {
    let mut map = Map::new();
    map.insert("__type".into(), Value::String(type_name.to_string()));
    map.insert("message".into(), Value::String(message.to_string()));
    encode(&Value::Object(map), &[])
}

/// The body of an error answer, named as the error is.
pub fn error_body(error: &ApiError) -> Vec<u8> {
    error_body_named(error.name, &error.message)
}

/// Decodes a request body (an empty one is an empty map) into the JSON value of its input.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let mut reader = Reader { bytes: body, at: 0 };
    let value = reader.item(0).map_err(|e| {
        ApiError::serialization(format!("The request body is not valid CBOR: {e}."))
    })?;
    if reader.at != body.len() {
        return Err(ApiError::serialization(
            "The request body is not valid CBOR: bytes follow the first data item.",
        ));
    }
    if !value.is_object() {
        return Err(ApiError::serialization(
            "The request body must be a CBOR map holding the operation's parameters.",
        ));
    }
    Ok(value)
}

/// What a decoder step yields: the item, or a description of what is wrong.
type Decoded<T> = Result<T, String>;

/// A read position in a CBOR body.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// An item's head: its major type and its argument (`None` for an indefinite length).
struct Head {
    major: u8,
    info: u8,
    argument: Option<u64>,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Decoded<&[u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| "the body ends inside a data item".to_string())?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn uint(&mut self, n: usize) -> Decoded<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn head(&mut self) -> Decoded<Head> {
        let first = self.take(1)?[0];
        let (major, info) = (first >> 5, first & 0x1f);
        let argument = match info {
            0..=23 => Some(u64::from(info)),
            24 => Some(self.uint(1)?),
            25 => Some(self.uint(2)?),
            26 => Some(self.uint(4)?),
            27 => Some(self.uint(8)?),
            31 if matches!(major, 2..=5 | 7) => None,
            _ => return Err(format!("reserved additional information {info}")),
        };
        Ok(Head {
            major,
            info,
            argument,
        })
    }

    /// Whether the next byte ends an indefinite-length item (and steps over it if so).
    fn at_break(&mut self) -> Decoded<bool> {
        match self.peek() {
            Some(BREAK) => {
                self.at += 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => Err("an indefinite-length item has no break".to_string()),
        }
    }

    fn length(&self, n: u64) -> Decoded<usize> {
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.bytes.len())
            .ok_or_else(|| format!("a length of {n} exceeds the body"))
    }

    /// The bytes of a byte or text string (major type `major`), joining indefinite chunks.
    fn string_bytes(&mut self, major: u8, argument: Option<u64>) -> Decoded<Vec<u8>> {
        match argument {
            Some(n) => {
                let n = self.length(n)?;
                Ok(self.take(n)?.to_vec())
            }
            None => {
                let mut out = Vec::new();
                while !self.at_break()? {
                    let chunk = self.head()?;
                    if chunk.major != major {
                        return Err("a string chunk of another type".to_string());
                    }
                    let Some(n) = chunk.argument else {
                        return Err("a nested indefinite-length string chunk".to_string());
                    };
                    let n = self.length(n)?;
                    out.extend_from_slice(self.take(n)?);
                }
                Ok(out)
            }
        }
    }

    fn item(&mut self, depth: usize) -> Decoded<Value> {
        if depth > MAX_DEPTH {
            return Err(format!("items nest deeper than {MAX_DEPTH} levels"));
        }
        let head = self.head()?;
        let n = head.argument.unwrap_or(0);
        match head.major {
            0 => Ok(Value::Number(n.into())),
            1 => Ok(match i64::try_from(n) {
                Ok(n) => Value::Number((-1 - n).into()),
                Err(_) => float(-1.0 - n as f64)?,
            }),
            2 => {
                let bytes = self.string_bytes(2, head.argument)?;
                Ok(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(bytes),
                ))
            }
            3 => {
                let bytes = self.string_bytes(3, head.argument)?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| "a text string is not UTF-8".to_string())
            }
            4 => {
                let mut items = Vec::new();
                match head.argument {
                    Some(n) => {
                        for _ in 0..self.length(n)? {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                    None => {
                        while !self.at_break()? {
                            items.push(self.item(depth + 1)?);
                        }
                    }
                }
                Ok(Value::Array(items))
            }
            5 => {
                let mut map = Map::new();
                match head.argument {
                    Some(n) => {
                        for _ in 0..self.length(n)? {
                            self.entry(&mut map, depth)?;
                        }
                    }
                    None => {
                        while !self.at_break()? {
                            self.entry(&mut map, depth)?;
                        }
                    }
                }
                Ok(Value::Object(map))
            }
            6 => {
                let inner = self.item(depth + 1)?;
                // Tag 1 is an epoch-seconds time, which the JSON form carries as the number.
                if n == 1 && !inner.is_number() {
                    return Err("a tag 1 time is not a number".to_string());
                }
                Ok(inner)
            }
            _ => self.simple(&head),
        }
    }

    fn entry(&mut self, map: &mut Map<String, Value>, depth: usize) -> Decoded<()> {
        let Value::String(key) = self.item(depth + 1)? else {
            return Err("a map key is not a text string".to_string());
        };
        let value = self.item(depth + 1)?;
        map.insert(key, value);
        Ok(())
    }

    /// Major type 7: booleans, null, undefined and half, single and double floats.
    fn simple(&mut self, head: &Head) -> Decoded<Value> {
        let bits = head.argument.unwrap_or(0);
        match head.info {
            20 => Ok(Value::Bool(false)),
            21 => Ok(Value::Bool(true)),
            22 | 23 => Ok(Value::Null),
            25 => float(half_to_f64(bits as u16)),
            26 => float(f64::from(f32::from_bits(bits as u32))),
            27 => float(f64::from_bits(bits)),
            31 => Err("an unexpected break".to_string()),
            other => Err(format!("the unsupported simple value {other}")),
        }
    }
}

fn float(f: f64) -> Decoded<Value> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("the number {f} is not finite"))
}

/// An IEEE 754 half-precision float.
fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((bits >> 10) & 0x1f);
    let fraction = f64::from(bits & 0x3ff);
    let magnitude = match exponent {
        0 => fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    };
    sign * magnitude
}

/// Encodes `value`; a number or array of numbers under a key named in `timestamps` goes out
/// as tag 1 time(s).
pub fn encode(value: &Value, timestamps: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    write_item(&mut out, value, timestamps, false);
    out
}

fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    if n < 24 {
        out.push(major | n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.extend([major | 24, n as u8]);
    } else if n <= u64::from(u16::MAX) {
        out.push(major | 25);
        out.extend((n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(major | 26);
        out.extend((n as u32).to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend(n.to_be_bytes());
    }
}

fn write_item(out: &mut Vec<u8>, value: &Value, timestamps: &[&str], is_time: bool) {
    match value {
        Value::Null => out.push(0xf6),
        Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
        Value::Number(n) => {
            if is_time {
                write_head(out, 6, 1);
            }
            if let Some(u) = n.as_u64() {
                write_head(out, 0, u);
            } else if let Some(i) = n.as_i64() {
                // Negative: CBOR stores -1 - n.
                write_head(out, 1, (-1 - i) as u64);
            } else {
                out.push(0xfb);
                out.extend(n.as_f64().unwrap_or(0.0).to_be_bytes());
            }
        }
        Value::String(s) => {
            write_head(out, 3, s.len() as u64);
            out.extend(s.as_bytes());
        }
        Value::Array(items) => {
            write_head(out, 4, items.len() as u64);
            for item in items {
                write_item(out, item, timestamps, is_time);
            }
        }
        Value::Object(map) => {
            write_head(out, 5, map.len() as u64);
            for (key, item) in map {
                write_head(out, 3, key.len() as u64);
                out.extend(key.as_bytes());
                write_item(out, item, timestamps, timestamps.contains(&key.as_str()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("test hex is valid"))
            .collect()
    }

    #[test]
    fn cbor_decodes_botocore_put_metric_data_bytes() {
        // botocore 1.44's RpcV2CBORSerializer for PutMetricData(Namespace="App",
        // MetricData=[{MetricName: "Hits", Timestamp: datetime(2026,12,1,tz=utc), Value: 2.5,
        // Dimensions: [{Name: "Host", Value: "a"}], Unit: "Count"}]).
        let body = hex(concat!(
            "a2694e616d657370616365634170706a4d65747269634461746181a56a4d65747269634e616d6564",
            "486974736954696d657374616d70c11a6b0e0e006556616c7565fb40040000000000006a44696d65",
            "6e73696f6e7381a2644e616d6564486f73746556616c7565616164556e697465436f756e74"
        ));
        let value = decode(&body).expect("botocore's bytes decode");
        assert_eq!(
            value,
            json!({"Namespace": "App", "MetricData": [{"MetricName": "Hits",
                "Timestamp": 1_796_083_200u64, "Value": 2.5,
                "Dimensions": [{"Name": "Host", "Value": "a"}], "Unit": "Count"}]})
        );
    }

    #[test]
    fn cbor_decodes_indefinite_lengths_and_every_float_width() {
        // {_ "a": [_ 1, -2, 1.5 (half), 0.25 (single)], "b": (_ h'01', h'02'), "c": (_ "x", "y"),
        //  "d": true, "e": null}
        let body = hex(concat!(
            "bf",
            "6161",
            "9f0121f93e00fa3e800000ff",
            "6162",
            "5f41014102ff",
            "6163",
            "7f61786179ff",
            "6164f5",
            "6165f6",
            "ff"
        ));
        let value = decode(&body).expect("indefinite items decode");
        assert_eq!(
            value,
            json!({"a": [1, -2, 1.5, 0.25], "b": "AQI=", "c": "xy", "d": true, "e": null})
        );
    }

    #[test]
    fn cbor_turns_a_tag_1_float_time_into_epoch_seconds() {
        // {"t": 1(1.5e9 + 0.5)}
        let mut body = hex("a16174c1fb");
        body.extend(1_500_000_000.5f64.to_be_bytes());
        assert_eq!(
            decode(&body).expect("decodes"),
            json!({"t": 1_500_000_000.5})
        );
    }

    #[test]
    fn cbor_rejects_truncated_bodies_trailing_bytes_and_non_maps() {
        assert!(decode(&hex("a2616101")).is_err());
        assert!(decode(&hex("a1616101ff")).is_err());
        assert!(decode(&hex("8101")).is_err());
        assert!(decode(&hex("a1016101")).is_err(), "a map key must be text");
        assert!(
            decode(&hex("bf6161")).is_err(),
            "an indefinite map needs a break"
        );
        assert!(decode(&hex("a1616162ffff")).is_err());
        assert!(
            decode(&hex("a16161fb7ff8000000000000")).is_err(),
            "NaN is refused"
        );
        assert!(
            decode(&hex("a161617b00000000ffffffff")).is_err(),
            "a huge length fails"
        );
        let mut deep = vec![0xa1, 0x61, 0x61];
        deep.extend(std::iter::repeat_n(0x81, 100));
        deep.push(0x01);
        assert!(decode(&deep).is_err(), "deep nesting is bounded");
        assert_eq!(decode(b"").expect("empty is {}"), json!({}));
    }

    #[test]
    fn cbor_encodes_timestamps_as_tag_1_and_round_trips() {
        let value = json!({"Label": "Hits", "Datapoints": [{"Timestamp": 60, "Sum": 2.5,
            "SampleCount": 1.0}], "Timestamps": [120.5, 60], "Big": 70000, "Neg": -300});
        let bytes = encode(&value, &["Timestamp", "Timestamps"]);
        // Tag 1 (0xc1) precedes every timestamp: once in Datapoints, twice in Timestamps.
        assert_eq!(bytes.iter().filter(|b| **b == 0xc1).count(), 3);
        assert_eq!(decode(&bytes).expect("round trip"), value);
    }

    #[test]
    fn cbor_error_bodies_name_the_type_and_message() {
        let body = error_body_named("InvalidParameterValueException", "bad");
        assert_eq!(
            decode(&body).expect("decodes"),
            json!({"__type": "InvalidParameterValueException", "message": "bad"})
        );
    }

    #[test]
    fn cbor_half_floats_cover_subnormals_and_infinity() {
        assert_eq!(half_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(half_to_f64(0xc000), -2.0);
        assert!(half_to_f64(0x7c00).is_infinite());
    }
}
