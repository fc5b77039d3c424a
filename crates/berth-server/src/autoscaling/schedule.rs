//! Schedule expressions of scheduled actions, as Application Auto Scaling reads them:
//! `at(yyyy-mm-ddThh:mm:ss)` (once, in the action's time zone), `rate(N minute|minutes|hour|
//! hours|day|days)` (every N units from the action's start), and `cron(Minutes Hours
//! Day-of-month Month Day-of-week Year)` (fields with `*`, `?`, lists, ranges, steps, and
//! month and day names; `L`, `W` and `#` are refused). Times are read in the IANA time zone
//! given (UTC by default), with the zone data built into the binary.

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Once, at this instant (epoch seconds).
    At(i64),
    /// Every this many seconds.
    Rate(i64),
    /// When every field matches.
    Cron(Box<Cron>),
}

/// The allowed values of each cron field.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    /// Sunday = 0.
    weekdays: Vec<bool>,
    /// Any year when `None`.
    years: Option<Vec<(i64, i64, i64)>>,
    /// Day-of-month given (not `*`/`?`) and day-of-week given: either may match.
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// The time zone `name` (IANA), or why not.
pub fn zone(name: Option<&str>) -> Result<TimeZone, String> {
    match name {
        None | Some("UTC") | Some("Etc/UTC") => Ok(TimeZone::UTC),
        Some(name) => TimeZone::get(name).map_err(|_| {
            format!("Unknown time zone {name}: use an IANA name such as Europe/Paris.")
        }),
    }
}

/// Parses `expression` for time zone `tz`.
pub fn parse(expression: &str, tz: &TimeZone) -> Result<Schedule, String> {
    let inner = |prefix: &str| {
        expression
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(')'))
    };
    if let Some(at) = inner("at(") {
        let civil: jiff::civil::DateTime = at.parse().map_err(|_| {
            format!("Invalid at expression {expression}: use at(yyyy-mm-ddThh:mm:ss).")
        })?;
        let at = tz
            .to_timestamp(civil)
            .map_err(|e| format!("Invalid at expression {expression}: {e}"))?;
        return Ok(Schedule::At(at.as_second()));
    }
    if let Some(rate) = inner("rate(") {
        let mut parts = rate.split_whitespace();
        let (Some(n), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "Invalid rate expression {expression}: use rate(5 minutes)."
            ));
        };
        let n: i64 = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!(
                "Invalid rate expression {expression}: the value must be a positive whole number."
            )
        })?;
        let seconds = match (unit, n) {
            ("minute", 1) | ("hour", 1) | ("day", 1) => match unit {
                "minute" => 60,
                "hour" => 3600,
                _ => 86_400,
            },
            ("minutes", n) if n > 1 => 60,
            ("hours", n) if n > 1 => 3600,
            ("days", n) if n > 1 => 86_400,
            _ => {
                return Err(format!(
                    "Invalid rate expression {expression}: the unit must be minute, hour or day for 1 and minutes, hours or days above."
                ))
            }
        };
        return Ok(Schedule::Rate(n * seconds));
    }
    if let Some(cron) = inner("cron(") {
        return Ok(Schedule::Cron(Box::new(parse_cron(cron).map_err(
            |why| format!("Invalid cron expression {expression}: {why}"),
        )?)));
    }
    Err(format!(
        "Invalid schedule {expression}: use at(...), rate(...) or cron(...)."
    ))
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The values `field` allows between `low` and `high`; `names` stand for `low`, `low+1`, …
fn field(field: &str, low: i64, high: i64, names: &[&str]) -> Result<Vec<bool>, String> {
    let value = |text: &str| -> Result<i64, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(low + i as i64);
        }
        text.parse::<i64>()
            .ok()
            .filter(|v| (low..=high).contains(v))
            .ok_or_else(|| format!("'{text}' is not a value from {low} to {high}"))
    };
    let mut allowed = vec![false; (high + 1) as usize];
    for part in field.split(',') {
        let digits_then = |suffix: char| {
            part.strip_suffix(suffix)
                .is_some_and(|d| d.is_empty() || d.chars().all(|c| c.is_ascii_digit()))
        };
        if part.contains('#') || part == "LW" || digits_then('L') || digits_then('W') {
            return Err(format!("'{part}': L, W and # are not supported"));
        }
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (
                range,
                step.parse::<i64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("'{part}' has a bad step"))?,
            ),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" | "?" => (low, high),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(range)?, high),
                None => {
                    let v = value(range)?;
                    (v, v)
                }
            },
        };
        if from > to {
            return Err(format!("'{part}' is an empty range"));
        }
        let mut v = from;
        while v <= to {
            allowed[v as usize] = true;
            v += step;
        }
    }
    Ok(allowed)
}

fn parse_cron(text: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [minutes, hours, days, months, weekdays, year] = fields.as_slice() else {
        return Err(
            "it needs six fields: minutes hours day-of-month month day-of-week year".into(),
        );
    };
    if *days != "?" && *weekdays != "?" && *days != "*" && *weekdays != "*" {
        return Err("give day-of-month or day-of-week, and ? for the other".into());
    }
    // AWS numbers days of the week 1 (SUN) to 7 (SAT).
    let aws_weekdays = field(weekdays, 1, 7, &WEEKDAYS)?;
    let years = match *year {
        "*" | "?" => None,
        text => Some(
            text.split(',')
                .map(|part| {
                    let (range, step) = part.split_once('/').unwrap_or((part, "1"));
                    let step: i64 = step
                        .parse()
                        .map_err(|_| format!("'{part}' has a bad step"))?;
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    let a: i64 = a.parse().map_err(|_| format!("'{part}' is not a year"))?;
                    let b: i64 = b.parse().map_err(|_| format!("'{part}' is not a year"))?;
                    Ok((a, b, step.max(1)))
                })
                .collect::<Result<Vec<_>, String>>()?,
        ),
    };
    Ok(Cron {
        minutes: field(minutes, 0, 59, &[])?,
        hours: field(hours, 0, 23, &[])?,
        days: field(days, 1, 31, &[])?,
        months: field(months, 1, 12, &MONTHS)?,
        weekdays: (0..7).map(|d| aws_weekdays[d + 1]).collect(),
        years,
        days_restricted: !matches!(*days, "*" | "?"),
        weekdays_restricted: !matches!(*weekdays, "*" | "?"),
    })
}

impl Cron {
    /// Whether the minute starting at `epoch_seconds` matches, read in `tz`.
    fn matches(&self, epoch_seconds: i64, tz: &TimeZone) -> bool {
        let Ok(at) = Timestamp::from_second(epoch_seconds) else {
            return false;
        };
        let local = tz.to_datetime(at);
        let day_ok = self.days[local.day() as usize];
        let weekday_ok = self.weekdays[local.weekday().to_sunday_zero_offset() as usize];
        let date_ok = match (self.days_restricted, self.weekdays_restricted) {
            (true, false) => day_ok,
            (false, true) => weekday_ok,
            _ => day_ok && weekday_ok,
        };
        let year = i64::from(local.year());
        let year_ok = self.years.as_ref().is_none_or(|ranges| {
            ranges
                .iter()
                .any(|(a, b, step)| (*a..=*b).contains(&year) && (year - a) % step == 0)
        });
        self.minutes[local.minute() as usize]
            && self.hours[local.hour() as usize]
            && self.months[local.month() as usize]
            && date_ok
            && year_ok
    }
}

/// The latest time `schedule` fires in `(after, now]` (epoch seconds), given the action's
/// `start` (rates count from it), or `None`.
pub fn due(schedule: &Schedule, tz: &TimeZone, start: i64, after: i64, now: i64) -> Option<i64> {
    match schedule {
        Schedule::At(at) => (*at > after && *at <= now).then_some(*at),
        Schedule::Rate(every) => {
            if now < start {
                return None;
            }
            let last = start + (now - start) / every * every;
            (last > after && last > start).then_some(last)
        }
        Schedule::Cron(cron) => {
            // Minute by minute back from now, at most a day (what a restart may have missed
            // longer ago is not run late).
            let mut minute = now - now.rem_euclid(60);
            let floor = after.max(now - 86_400);
            while minute > floor {
                if cron.matches(minute, tz) {
                    return Some(minute);
                }
                minute -= 60;
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01T00:00:00Z, a Tuesday.
    const T0: i64 = 1_796_083_200;

    #[test]
    fn at_rate_and_cron_fire_when_due() {
        let utc = zone(None).expect("utc");
        let at = parse("at(2026-12-01T00:10:00)", &utc).expect("at");
        assert_eq!(at, Schedule::At(T0 + 600));
        assert_eq!(due(&at, &utc, T0, T0, T0 + 599), None);
        assert_eq!(due(&at, &utc, T0, T0, T0 + 605), Some(T0 + 600));
        assert_eq!(due(&at, &utc, T0, T0 + 600, T0 + 700), None, "once");

        let rate = parse("rate(5 minutes)", &utc).expect("rate");
        assert_eq!(due(&rate, &utc, T0, T0, T0 + 299), None);
        assert_eq!(due(&rate, &utc, T0, T0, T0 + 301), Some(T0 + 300));
        assert_eq!(due(&rate, &utc, T0, T0 + 300, T0 + 599), None);

        // Weekdays at 08:30: Tuesday the 1st is one.
        let cron = parse("cron(30 8 ? * MON-FRI *)", &utc).expect("cron");
        let eight_thirty = T0 + 8 * 3600 + 1800;
        assert_eq!(
            due(&cron, &utc, T0, T0, eight_thirty + 5),
            Some(eight_thirty)
        );
        assert_eq!(
            due(&cron, &utc, T0, eight_thirty, eight_thirty + 3600),
            None
        );
        // Not on the Saturday after.
        let saturday = eight_thirty + 4 * 86_400;
        assert_eq!(due(&cron, &utc, T0, saturday - 60, saturday + 5), None);
        // Every 15 minutes.
        let quarter = parse("cron(0/15 * * * ? *)", &utc).expect("cron");
        assert_eq!(due(&quarter, &utc, T0, T0 + 100, T0 + 1000), Some(T0 + 900));
    }

    #[test]
    fn times_are_read_in_the_actions_zone() {
        let paris = zone(Some("Europe/Paris")).expect("the bundled zone data");
        // 09:00 in Paris in December is 08:00 UTC.
        let at = parse("at(2026-12-01T09:00:00)", &paris).expect("at");
        assert_eq!(at, Schedule::At(T0 + 8 * 3600));
        let cron = parse("cron(0 9 * * ? *)", &paris).expect("cron");
        assert_eq!(
            due(&cron, &paris, T0, T0, T0 + 8 * 3600 + 10),
            Some(T0 + 8 * 3600)
        );
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        let utc = zone(None).expect("utc");
        for bad in [
            "every 5 minutes",
            "rate(0 minutes)",
            "rate(5 minute)",
            "rate(1 minutes)",
            "cron(0 8 * * *)",
            "cron(0 8 1 * MON *)",
            "cron(0 8 L * ? *)",
            "cron(61 8 * * ? *)",
            "at(tomorrow)",
        ] {
            assert!(parse(bad, &utc).is_err(), "{bad} accepted");
        }
        assert!(zone(Some("Mars/Olympus")).is_err());
    }
}
