//! FilterLogEvents: the events of a group's streams that match a filter pattern, across
//! streams in timestamp order.

use super::{
    authorize, blocking, decode_token, encode_token, group_resource, io_error, limit_of,
    resolve_group, validate_stream_name,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_core::logs::FilterPattern;
use serde::{Deserialize, Serialize};
use std::collections::BinaryHeap;

/// The input of FilterLogEvents.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsRequest {
    #[serde(default)]
    log_group_name: Option<String>,
    #[serde(default)]
    log_group_identifier: Option<String>,
    #[serde(default)]
    log_stream_names: Option<Vec<String>>,
    #[serde(default)]
    log_stream_name_prefix: Option<String>,
    #[serde(default)]
    start_time: Option<i64>,
    #[serde(default)]
    end_time: Option<i64>,
    #[serde(default)]
    filter_pattern: Option<String>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    /// Accepted; results are always interleaved across streams, as the service now does.
    #[serde(default)]
    #[allow(dead_code)]
    interleaved: Option<bool>,
}

/// One matching event.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilteredLogEvent {
    log_stream_name: String,
    timestamp: i64,
    message: String,
    ingestion_time: i64,
    event_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchedLogStream {
    log_stream_name: String,
    searched_completely: bool,
}

/// The answer of FilterLogEvents.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterLogEventsResponse {
    events: Vec<FilteredLogEvent>,
    searched_log_streams: Vec<SearchedLogStream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// Where an event sorts in a FilterLogEvents answer: timestamp, then stream, then place in
/// the stream. Pages continue after the last key returned.
type Key = (i64, u64, u64);

/// A matching event kept while scanning.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Hit {
    key: Key,
    ingestion_time: i64,
    message: String,
}

/// Most bytes of events in one answer, counted as PutLogEvents counts them.
const MAX_ANSWER_BYTES: usize = 1_048_576;

/// The smallest hits of a scan — at most `limit` of them and [`MAX_ANSWER_BYTES`] — and
/// whether more were seen.
struct Best {
    heap: BinaryHeap<Hit>,
    limit: usize,
    bytes: usize,
    overflowed: bool,
}

impl Best {
    fn offer(&mut self, key: Key, ingestion_time: i64, message: &str) {
        if self.heap.len() == self.limit {
            self.overflowed = true;
            if self.heap.peek().is_some_and(|worst| worst.key <= key) {
                return;
            }
            if let Some(worst) = self.heap.pop() {
                self.bytes -= worst.message.len() + 26;
            }
        }
        self.heap.push(Hit {
            key,
            ingestion_time,
            message: message.to_string(),
        });
        self.bytes += message.len() + 26;
        while self.bytes > MAX_ANSWER_BYTES && self.heap.len() > 1 {
            self.overflowed = true;
            if let Some(worst) = self.heap.pop() {
                self.bytes -= worst.message.len() + 26;
            }
        }
    }
}

fn parse_cursor(token: &str) -> Result<Key, ApiError> {
    let cursor = decode_token(token)?;
    let invalid = || ApiError::invalid_parameter("The specified nextToken is invalid.");
    let mut parts = cursor.split(':');
    let mut next = || {
        parts
            .next()
            .ok_or_else(invalid)?
            .parse::<i64>()
            .map_err(|_| invalid())
    };
    Ok((next()?, next()? as u64, next()? as u64))
}

/// The event id of the event at `key`: unique in the group, stable for the event's life.
fn event_id(key: Key) -> String {
    format!("{:020}{:016}{:020}", key.0, key.1, key.2)
}

/// FilterLogEvents: events of the group's streams (all, those named, or those with a name
/// prefix) in `[startTime, endTime)` that match `filterPattern`, in timestamp order across
/// streams, at most `limit` (10,000) a page; `nextToken` continues after the last one.
pub async fn filter_log_events(
    ctx: Ctx,
    input: FilterLogEventsRequest,
) -> Result<FilterLogEventsResponse, ApiError> {
    let group = resolve_group(&ctx, input.log_group_name, input.log_group_identifier)?;
    if input.log_stream_names.is_some() && input.log_stream_name_prefix.is_some() {
        return Err(ApiError::invalid_parameter(
            "logStreamNames and logStreamNamePrefix are mutually exclusive parameters.",
        ));
    }
    if let Some(names) = &input.log_stream_names {
        if names.is_empty() || names.len() > 100 {
            return Err(ApiError::invalid_parameter(
                "logStreamNames must name 1 to 100 log streams.",
            ));
        }
        names.iter().try_for_each(|n| validate_stream_name(n))?;
    }
    if let Some(prefix) = &input.log_stream_name_prefix {
        validate_stream_name(prefix)?;
    }
    let pattern_text = input.filter_pattern.unwrap_or_default();
    if pattern_text.len() > 1024 {
        return Err(ApiError::invalid_parameter(
            "Invalid filter pattern: longer than 1024 characters.",
        ));
    }
    let pattern = FilterPattern::parse(&pattern_text)
        .map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
    let limit = limit_of(input.limit, 10_000)?;
    let after = input.next_token.as_deref().map(parse_cursor).transpose()?;
    authorize(
        &ctx,
        "FilterLogEvents",
        &group_resource(&ctx, &group),
        &Vec::new(),
    )?;
    let (start, end) = (input.start_time, input.end_time);
    let names = input.log_stream_names;
    let prefix = input.log_stream_name_prefix.unwrap_or_default();
    let (hits, more, searched) = blocking(&ctx, move |logs| {
        let streams: Vec<_> = logs
            .group(&group)?
            .streams()
            .map_err(io_error)?
            .into_iter()
            .filter(|s| match &names {
                Some(names) => names.contains(&s.name),
                None => s.name.starts_with(&prefix),
            })
            .collect();
        let mut best = Best {
            heap: BinaryHeap::new(),
            limit,
            bytes: 0,
            overflowed: false,
        };
        let mut stream_names = std::collections::HashMap::new();
        for stream in &streams {
            stream_names.insert(stream.id, stream.name.clone());
            stream
                .scan(0, start, end, |seq, record| {
                    let key = (record.timestamp, stream.id, seq);
                    if after.is_none_or(|a| key > a) && pattern.matches(record.message) {
                        best.offer(key, record.ingestion_time, record.message);
                    }
                    true
                })
                .map_err(io_error)?;
        }
        let hits: Vec<(String, Hit)> = best
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|h| (stream_names.get(&h.key.1).cloned().unwrap_or_default(), h))
            .collect();
        let searched: Vec<String> = streams.iter().map(|s| s.name.clone()).collect();
        Ok((hits, best.overflowed, searched))
    })
    .await?;
    let next_token = match hits.last() {
        Some((_, last)) if more => {
            let (ts, stream, seq) = last.key;
            Some(encode_token(&format!("{ts}:{stream}:{seq}")))
        }
        _ => None,
    };
    Ok(FilterLogEventsResponse {
        events: hits
            .into_iter()
            .map(|(log_stream_name, hit)| FilteredLogEvent {
                log_stream_name,
                timestamp: hit.key.0,
                message: hit.message,
                ingestion_time: hit.ingestion_time,
                event_id: event_id(hit.key),
            })
            .collect(),
        searched_log_streams: searched
            .into_iter()
            .map(|log_stream_name| SearchedLogStream {
                log_stream_name,
                searched_completely: true,
            })
            .collect(),
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn best(limit: usize) -> Best {
        Best {
            heap: BinaryHeap::new(),
            limit,
            bytes: 0,
            overflowed: false,
        }
    }

    #[test]
    fn the_smallest_keys_are_kept_up_to_the_limit() {
        let mut b = best(2);
        for ts in [5, 1, 3] {
            b.offer((ts, 0, 0), 0, "m");
        }
        let kept: Vec<i64> = b.heap.into_sorted_vec().iter().map(|h| h.key.0).collect();
        assert_eq!(kept, [1, 3]);
        assert!(b.overflowed);
    }

    #[test]
    fn an_answer_stays_within_a_megabyte() {
        let mut b = best(10_000);
        let big = "x".repeat(400_000);
        for ts in 0..5 {
            b.offer((ts, 0, 0), 0, &big);
        }
        let kept: Vec<i64> = b.heap.into_sorted_vec().iter().map(|h| h.key.0).collect();
        assert_eq!(kept, [0, 1]);
        assert!(b.overflowed && b.bytes <= MAX_ANSWER_BYTES);
    }

    #[test]
    fn a_page_token_round_trips_and_junk_is_refused() {
        let token = encode_token("12:3:4");
        assert_eq!(parse_cursor(&token).expect("own token"), (12, 3, 4));
        assert!(parse_cursor("!!").is_err());
        assert!(parse_cursor(&encode_token("1:2")).is_err());
    }
}
