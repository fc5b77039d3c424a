//! Events of one stream: PutLogEvents and GetLogEvents.

use super::{
    authorize, blocking, io_error, limit_of, now_ms, resolve_group, stream_arn,
    validate_group_name, validate_stream_name,
};
use crate::dispatch::Ctx;
use crate::error::ApiError;
use berth_store::logs::segment::NO_POSITION;
use berth_store::logs::{StoredEvent, Window, DAY_MS};
use serde::{Deserialize, Serialize};

/// Most events in one PutLogEvents call.
pub const MAX_BATCH_EVENTS: usize = 10_000;
/// Most bytes in one PutLogEvents call: the messages' UTF-8 bytes plus 26 per event.
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// What the service counts for each event besides its message.
pub const EVENT_OVERHEAD: usize = 26;
/// The longest time one batch may span.
const MAX_BATCH_SPAN_MS: i64 = DAY_MS;
/// Events older than this are refused (`tooOldLogEventEndIndex`).
const MAX_AGE_MS: i64 = 14 * DAY_MS;
/// Events further ahead than this are refused (`tooNewLogEventStartIndex`).
const MAX_AHEAD_MS: i64 = 2 * 60 * 60 * 1000;

/// One event of a PutLogEvents batch.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputLogEvent {
    timestamp: i64,
    message: String,
}

/// The input of PutLogEvents.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsRequest {
    log_group_name: String,
    log_stream_name: String,
    log_events: Vec<InputLogEvent>,
    /// Accepted and ignored, as the service now does.
    #[serde(default)]
    #[allow(dead_code)]
    sequence_token: Option<String>,
}

/// The events of a batch that were not stored, by index.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RejectedLogEventsInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    too_new_log_event_start_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    too_old_log_event_end_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired_log_event_end_index: Option<usize>,
}

/// The answer of PutLogEvents.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutLogEventsResponse {
    next_sequence_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejected_log_events_info: Option<RejectedLogEventsInfo>,
}

/// The range `[first, end)` of a chronological batch the service stores, and what it
/// rejects: events more than two hours ahead of `now`, older than 14 days, or older than the
/// group's retention.
fn accepted_range(
    timestamps: &[i64],
    now: i64,
    retention_days: Option<i32>,
) -> (std::ops::Range<usize>, RejectedLogEventsInfo) {
    let mut info = RejectedLogEventsInfo::default();
    let end = timestamps
        .iter()
        .position(|&t| t > now + MAX_AHEAD_MS)
        .unwrap_or(timestamps.len());
    if end < timestamps.len() {
        info.too_new_log_event_start_index = Some(end);
    }
    let too_old = timestamps[..end]
        .iter()
        .take_while(|&&t| t < now - MAX_AGE_MS)
        .count();
    if too_old > 0 {
        info.too_old_log_event_end_index = Some(too_old - 1);
    }
    let expired = retention_days.map_or(0, |days| {
        let cutoff = now - i64::from(days) * DAY_MS;
        timestamps[..end]
            .iter()
            .take_while(|&&t| t < cutoff)
            .count()
    });
    if expired > 0 {
        info.expired_log_event_end_index = Some(expired - 1);
    }
    ((too_old.max(expired)).min(end)..end, info)
}

/// Checks a PutLogEvents batch against the service's rules: 1 to 10,000 events, at most
/// 1,048,576 bytes, non-empty messages, chronological order, a span of at most 24 hours.
fn validate_batch(events: &[InputLogEvent]) -> Result<(), ApiError> {
    if events.is_empty() || events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::invalid_parameter(format!(
            "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length between 1 and {MAX_BATCH_EVENTS} (got {})",
            events.len()
        )));
    }
    let bytes: usize = events
        .iter()
        .map(|e| e.message.len() + EVENT_OVERHEAD)
        .sum();
    if bytes > MAX_BATCH_BYTES {
        return Err(ApiError::invalid_parameter(format!(
            "Log events in a single PutLogEvents request may total at most {MAX_BATCH_BYTES} bytes (messages plus {EVENT_OVERHEAD} bytes per event); this one has {bytes}."
        )));
    }
    for (i, e) in events.iter().enumerate() {
        if e.message.is_empty() {
            return Err(ApiError::invalid_parameter(format!(
                "1 validation error detected: Value at 'logEvents.{}.member.message' failed to satisfy constraint: Member must have length greater than or equal to 1",
                i + 1
            )));
        }
        if e.timestamp < 0 {
            return Err(ApiError::invalid_parameter(format!(
                "1 validation error detected: Value '{}' at 'logEvents.{}.member.timestamp' failed to satisfy constraint: Member must have value greater than or equal to 0",
                e.timestamp,
                i + 1
            )));
        }
    }
    if events.windows(2).any(|w| w[1].timestamp < w[0].timestamp) {
        return Err(ApiError::invalid_parameter(
            "Log events in a single PutLogEvents request must be in chronological order.",
        ));
    }
    let span = events[events.len() - 1].timestamp - events[0].timestamp;
    if span > MAX_BATCH_SPAN_MS {
        return Err(ApiError::invalid_parameter(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
        ));
    }
    Ok(())
}

/// PutLogEvents: stores a chronological batch of events in a stream. Events too far in the
/// future or past are not stored and reported in `rejectedLogEventsInfo`; the sequence token
/// is accepted and ignored, and the call always succeeds on a valid batch.
pub async fn put_log_events(
    ctx: Ctx,
    input: PutLogEventsRequest,
) -> Result<PutLogEventsResponse, ApiError> {
    validate_group_name(&input.log_group_name)?;
    validate_stream_name(&input.log_stream_name)?;
    validate_batch(&input.log_events)?;
    let arn = stream_arn(&ctx, &input.log_group_name, &input.log_stream_name);
    authorize(&ctx, "PutLogEvents", &arn, &Vec::new())?;
    let (next_seq, rejected) = blocking(&ctx, move |logs| {
        let group = logs.group(&input.log_group_name)?;
        let retention = group.meta().map_err(io_error)?.retention_in_days;
        let stream = logs.stream(&input.log_group_name, &input.log_stream_name)?;
        let now = now_ms();
        let timestamps: Vec<i64> = input.log_events.iter().map(|e| e.timestamp).collect();
        let (range, rejected) = accepted_range(&timestamps, now, retention);
        let batch: Vec<(i64, &str, u64)> = input.log_events[range]
            .iter()
            .map(|e| (e.timestamp, e.message.as_str(), NO_POSITION))
            .collect();
        stream.append(&batch, now)?;
        Ok((stream.info().map_err(io_error)?.next_seq, rejected))
    })
    .await?;
    Ok(PutLogEventsResponse {
        next_sequence_token: format!("{next_seq:056}"),
        rejected_log_events_info: (rejected != RejectedLogEventsInfo::default())
            .then_some(rejected),
    })
}

/// The input of GetLogEvents.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsRequest {
    #[serde(default)]
    log_group_name: Option<String>,
    #[serde(default)]
    log_group_identifier: Option<String>,
    log_stream_name: String,
    #[serde(default)]
    start_time: Option<i64>,
    #[serde(default)]
    end_time: Option<i64>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    start_from_head: Option<bool>,
}

/// One event as GetLogEvents returns it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutputLogEvent {
    timestamp: i64,
    message: String,
    ingestion_time: i64,
}

/// The answer of GetLogEvents.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLogEventsResponse {
    events: Vec<OutputLogEvent>,
    next_forward_token: String,
    next_backward_token: String,
}

/// Where a GetLogEvents call starts: `f/N` reads forward from event N, `b/N` backward from
/// before event N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cursor {
    Forward(u64),
    Backward(u64),
}

impl Cursor {
    fn parse(token: &str) -> Result<Cursor, ApiError> {
        let invalid = || ApiError::invalid_parameter("The specified nextToken is invalid.");
        let (kind, rest) = token.split_at_checked(2).ok_or_else(invalid)?;
        let digits = rest.strip_suffix("/s").unwrap_or(rest);
        let n: u64 = digits.parse().map_err(|_| invalid())?;
        match kind {
            "f/" => Ok(Cursor::Forward(n)),
            "b/" => Ok(Cursor::Backward(n)),
            _ => Err(invalid()),
        }
    }

    fn token(self) -> String {
        match self {
            Cursor::Forward(n) => format!("f/{n:056}/s"),
            Cursor::Backward(n) => format!("b/{n:056}/s"),
        }
    }
}

/// The events of one read and the tokens that continue it: forward from after the last
/// event, backward from before the first; the same token again when nothing was read.
fn page(events: &[StoredEvent], cursor: Cursor, next_seq: u64) -> (String, String) {
    let (forward, backward) = match (events.first(), events.last(), cursor) {
        (Some(first), Some(last), _) => (last.seq + 1, first.seq),
        (_, _, Cursor::Forward(n)) | (_, _, Cursor::Backward(n)) if n != u64::MAX => (n, n),
        _ => (next_seq, next_seq),
    };
    (
        Cursor::Forward(forward).token(),
        Cursor::Backward(backward).token(),
    )
}

/// GetLogEvents: events of one stream in `[startTime, endTime)`, the newest `limit` (10,000,
/// 1 MB) unless `startFromHead` or a token says where to read from. `nextForwardToken` and
/// `nextBackwardToken` continue the read; at the end the token given comes back unchanged.
pub async fn get_log_events(
    ctx: Ctx,
    input: GetLogEventsRequest,
) -> Result<GetLogEventsResponse, ApiError> {
    let group = resolve_group(&ctx, input.log_group_name, input.log_group_identifier)?;
    validate_stream_name(&input.log_stream_name)?;
    let limit = limit_of(input.limit, 10_000)?;
    let cursor = match input.next_token.as_deref() {
        Some(token) => Some(Cursor::parse(token)?),
        None => None,
    };
    if let (Some(start), Some(end)) = (input.start_time, input.end_time) {
        if start > end {
            return Err(ApiError::invalid_parameter(
                "startTime must not be after endTime.",
            ));
        }
    }
    let arn = stream_arn(&ctx, &group, &input.log_stream_name);
    authorize(&ctx, "GetLogEvents", &arn, &Vec::new())?;
    let window = Window {
        start: input.start_time,
        end: input.end_time,
        limit,
        max_bytes: 1_048_576,
    };
    let from_head = input.start_from_head.unwrap_or(false);
    let stream_name = input.log_stream_name;
    let (events, forward, backward) = blocking(&ctx, move |logs| {
        let stream = logs.stream(&group, &stream_name)?;
        let (events, cursor) = match cursor {
            Some(c @ Cursor::Forward(n)) => (stream.read_forward(n, window), c),
            Some(c @ Cursor::Backward(n)) => (stream.read_backward(Some(n), window), c),
            None if from_head => (stream.read_forward(0, window), Cursor::Forward(0)),
            None => (
                stream.read_backward(None, window),
                Cursor::Backward(u64::MAX),
            ),
        };
        let events = events.map_err(io_error)?;
        let next_seq = stream.info().map_err(io_error)?.next_seq;
        let (forward, backward) = page(&events, cursor, next_seq);
        Ok((events, forward, backward))
    })
    .await?;
    Ok(GetLogEventsResponse {
        events: events
            .into_iter()
            .map(|e| OutputLogEvent {
                timestamp: e.timestamp,
                message: e.message,
                ingestion_time: e.ingestion_time,
            })
            .collect(),
        next_forward_token: forward,
        next_backward_token: backward,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_too_new_too_old_and_expired_are_reported_by_index() {
        let now = 100 * DAY_MS;
        let ts = [
            now - 20 * DAY_MS,
            now - 5 * DAY_MS,
            now,
            now + 3 * 3_600_000,
        ];
        let (range, info) = accepted_range(&ts, now, Some(3));
        assert_eq!(range, 2..3);
        assert_eq!(info.too_old_log_event_end_index, Some(0));
        assert_eq!(info.expired_log_event_end_index, Some(1));
        assert_eq!(info.too_new_log_event_start_index, Some(3));
        let (range, info) = accepted_range(&ts[1..3], now, None);
        assert_eq!((range, info), (0..2, RejectedLogEventsInfo::default()));
    }

    #[test]
    fn tokens_round_trip_and_junk_is_refused() {
        let f = Cursor::Forward(42);
        assert_eq!(Cursor::parse(&f.token()).expect("own token"), f);
        assert_eq!(
            Cursor::parse("b/7").expect("short form"),
            Cursor::Backward(7)
        );
        assert!(Cursor::parse("x/1").is_err());
        assert!(Cursor::parse("f/").is_err());
        assert!(Cursor::parse("é").is_err());
    }

    #[test]
    fn an_empty_read_returns_the_token_it_was_given() {
        let (f, b) = page(&[], Cursor::Forward(9), 12);
        assert_eq!(
            (f, b),
            (Cursor::Forward(9).token(), Cursor::Backward(9).token())
        );
    }
}
