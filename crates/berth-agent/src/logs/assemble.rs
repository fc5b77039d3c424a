//! From a container's output lines to log events, as Docker's awslogs driver makes them:
//! parts of a long line joined, lines grouped into multiline events where a start pattern
//! says, each event stamped with its first line's time and placed by its last line's
//! position (`berth_core::telemetry::position`).

use crate::runtime::LogLine;
use berth_core::telemetry::{position, ShippedEvent, MAX_EVENT_BYTES};

/// Turns lines into events. Lines at or before the position it resumes after are skipped:
/// they were shipped already.
#[derive(Debug)]
pub struct Assembler {
    start: Option<regex_lite::Regex>,
    /// Lines at or before this position are skipped.
    after: Option<u64>,
    /// The timestamp of the last line part read and how many parts carried it.
    last_timestamp: u64,
    ordinal: u32,
    /// A line whose parts are still coming: the first part's time, the text so far.
    partial: Option<(u64, Vec<u8>)>,
    /// The multiline event being gathered.
    pending: Option<ShippedEvent>,
    /// The position of the last line read.
    last_position: Option<u64>,
    /// The position given to the last line part read, skipped or not.
    previous: Option<u64>,
}

impl Assembler {
    /// An assembler that starts events where `start` matches (every line, without one) and
    /// skips lines at or before position `after`.
    pub fn new(start: Option<regex_lite::Regex>, after: Option<u64>) -> Assembler {
        Assembler {
            start,
            after,
            last_timestamp: 0,
            ordinal: 0,
            partial: None,
            pending: None,
            last_position: after,
            previous: None,
        }
    }

    /// The position of the last line read (or the one it resumed after).
    pub fn last_position(&self) -> Option<u64> {
        self.last_position
    }

    /// Whether a multiline event waits for more lines.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Takes in one line part; returns the events it completes.
    pub fn push(&mut self, line: LogLine) -> Vec<ShippedEvent> {
        if line.timestamp_ns == self.last_timestamp {
            self.ordinal = self.ordinal.saturating_add(1);
        } else {
            self.last_timestamp = line.timestamp_ns;
            self.ordinal = 0;
        }
        // Docker stamps stdout and stderr as it copies each, so a line may carry an earlier
        // time than the one stored before it: positions follow the order Docker stored them.
        let at = match self.previous {
            Some(previous) if position(line.timestamp_ns, self.ordinal) <= previous => previous + 1,
            _ => position(line.timestamp_ns, self.ordinal),
        };
        self.previous = Some(at);
        let complete = line.text.ends_with(b"\n");
        let (first_ns, mut text) = match self.partial.take() {
            Some((first, mut text)) => {
                text.extend_from_slice(&line.text);
                (first, text)
            }
            None => (line.timestamp_ns, line.text.to_vec()),
        };
        if !complete {
            self.partial = Some((first_ns, text));
            return Vec::new();
        }
        if self.after.is_some_and(|after| at <= after) {
            return Vec::new();
        }
        self.last_position = Some(at);
        while matches!(text.last(), Some(b'\n' | b'\r')) {
            text.pop();
        }
        let message = cut(String::from_utf8_lossy(&text).into_owned());
        let event = ShippedEvent {
            position: at,
            timestamp: i64::try_from(first_ns / 1_000_000).unwrap_or(i64::MAX),
            message,
        };
        let Some(start) = &self.start else {
            return vec![event];
        };
        let mut done = Vec::new();
        match self.pending.as_mut() {
            Some(pending)
                if !start.is_match(&event.message)
                    && pending.message.len() + 1 + event.message.len() <= MAX_EVENT_BYTES =>
            {
                pending.message.push('\n');
                pending.message.push_str(&event.message);
                pending.position = event.position;
            }
            _ => {
                done.extend(self.pending.take());
                self.pending = Some(event);
            }
        }
        done
    }

    /// The multiline event gathered so far, if any (its next line is late, or the output
    /// ended).
    pub fn flush(&mut self) -> Option<ShippedEvent> {
        self.pending.take()
    }
}

/// `message` cut to CloudWatch Logs' largest event, at a character boundary.
fn cut(mut message: String) -> String {
    if message.len() > MAX_EVENT_BYTES {
        let mut end = MAX_EVENT_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ns: u64, text: &str) -> LogLine {
        LogLine {
            timestamp_ns: ns,
            text: bytes::Bytes::from(text.to_string()),
        }
    }

    fn messages(events: &[ShippedEvent]) -> Vec<&str> {
        events.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn every_line_is_an_event_without_a_start_pattern() {
        let mut assembler = Assembler::new(None, None);
        let mut events = assembler.push(line(1_000_000_000, "one\n"));
        events.extend(assembler.push(line(2_000_000_000, "two\r\n")));
        assert_eq!(messages(&events), ["one", "two"]);
        assert_eq!(events[0].timestamp, 1000);
        assert!(events[0].position < events[1].position);
        assert!(assembler.flush().is_none());
    }

    #[test]
    fn lines_of_one_nanosecond_get_distinct_positions() {
        let mut assembler = Assembler::new(None, None);
        let a = assembler.push(line(5, "a\n"));
        let b = assembler.push(line(5, "b\n"));
        assert!(a[0].position < b[0].position);
    }

    #[test]
    fn a_line_stamped_earlier_than_the_one_before_still_gets_a_later_position() {
        let mut assembler = Assembler::new(None, None);
        let out: Vec<ShippedEvent> = [line(10, "out\n"), line(7, "err\n"), line(11, "out2\n")]
            .into_iter()
            .flat_map(|l| assembler.push(l))
            .collect();
        assert_eq!(messages(&out), ["out", "err", "out2"]);
        assert!(
            out.windows(2).all(|w| w[0].position < w[1].position),
            "{out:?}"
        );
        assert_eq!(out[1].timestamp, 0, "its own time is kept");
    }

    #[test]
    fn resuming_skips_what_was_shipped_and_gives_the_same_positions() {
        let lines = [
            line(1, "a\n"),
            line(1, "b\n"),
            line(2, "c\n"),
            line(3, "d\n"),
        ];
        let mut first = Assembler::new(None, None);
        let all: Vec<ShippedEvent> = lines.iter().cloned().flat_map(|l| first.push(l)).collect();
        let mut again = Assembler::new(None, Some(all[1].position));
        let rest: Vec<ShippedEvent> = lines.iter().cloned().flat_map(|l| again.push(l)).collect();
        assert_eq!(rest, all[2..].to_vec());
    }

    #[test]
    fn parts_of_a_long_line_join_into_one_event_stamped_by_the_first() {
        let mut assembler = Assembler::new(None, None);
        assert!(assembler.push(line(1_000_000, "abc")).is_empty());
        let events = assembler.push(line(2_000_000, "def\n"));
        assert_eq!(messages(&events), ["abcdef"]);
        assert_eq!(events[0].timestamp, 1);
    }

    #[test]
    fn a_start_pattern_groups_following_lines_into_its_event() {
        let start = regex_lite::Regex::new("^\\d{4}-").expect("pattern");
        let mut assembler = Assembler::new(Some(start), None);
        let mut events = Vec::new();
        for (i, text) in [
            "2026-01-01 boom\n",
            "  at a\n",
            "  at b\n",
            "2026-01-02 ok\n",
        ]
        .iter()
        .enumerate()
        {
            events.extend(assembler.push(line(i as u64 + 1, text)));
        }
        assert_eq!(messages(&events), ["2026-01-01 boom\n  at a\n  at b"]);
        assert!(assembler.has_pending());
        let last = assembler.flush().expect("the last event");
        assert_eq!(last.message, "2026-01-02 ok");
        assert!(events[0].position < last.position);
        // The event is placed by its last line, so resuming after it skips all three.
        assert_eq!(events[0].position, position(3, 0));
    }

    #[test]
    fn an_oversized_line_is_cut_to_the_largest_event() {
        let mut assembler = Assembler::new(None, None);
        let long = format!("{}\n", "é".repeat(MAX_EVENT_BYTES));
        let events = assembler.push(line(1, &long));
        assert!(events[0].message.len() <= MAX_EVENT_BYTES);
        assert!(events[0].message.len() > MAX_EVENT_BYTES - 2);
    }
}
