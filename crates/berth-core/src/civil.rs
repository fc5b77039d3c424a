//! Calendar arithmetic on the proleptic Gregorian calendar (Howard Hinnant's algorithms):
//! the one place dates become day counts and back, for SigV4 timestamps, IAM date
//! conditions, the cluster query language and Docker's timestamps.

/// Days since 1970-01-01 of a date.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The number of days of `month` (1–12) in `year`.
pub fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An instant as ISO 8601 UTC: `2026-11-30T17:00:00Z`, or with `nanos` given
/// `2026-11-30T17:00:00.000000005Z` (RFC 3339 as ECS's metadata writes it).
pub fn iso8601(epoch_seconds: i64, nanos: Option<u32>) -> String {
    let (year, month, day) = civil_from_days(epoch_seconds.div_euclid(86_400));
    let of_day = epoch_seconds.rem_euclid(86_400);
    let fraction = nanos.map(|n| format!(".{n:09}")).unwrap_or_default();
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates_go_both_ways_across_leap_years_and_eras() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in [-719_468, -1, 0, 59, 11_016, 11_017, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{days}");
        }
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2026, 11), 30);
    }

    #[test]
    fn instants_read_as_iso_8601() {
        assert_eq!(super::iso8601(1_704_067_201, None), "2024-01-01T00:00:01Z");
        assert_eq!(
            super::iso8601(1_704_067_201, Some(5)),
            "2024-01-01T00:00:01.000000005Z"
        );
        assert_eq!(super::iso8601(-1, None), "1969-12-31T23:59:59Z");
    }
}
