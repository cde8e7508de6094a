//! `strftime_now(format)`, the one date function transformers gives chat templates
//! (Llama-3.2's `Today Date: 05 Mar 2026`), with the time a caller chooses so that prompts
//! are reproducible.
//!
//! transformers formats `datetime.now()`, the machine's local time; this formats UTC (the two
//! agree on machines that run on UTC, and otherwise differ only near midnight). Pass a fixed
//! time ([`RenderOptions::now`](super::RenderOptions::now)) to render the same prompt every day.

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A UTC time broken into its calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Monday.
    weekday: u32,
    /// 1-based day of the year.
    yday: u32,
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Seconds since 1970-01-01T00:00:00Z to the calendar (proleptic Gregorian; the
/// days-to-civil conversion of Howard Hinnant's `chrono`-compatible algorithms).
fn civil(unix: i64) -> Civil {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400) as u32;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = cumulative[(month - 1) as usize] + day + u32::from(month > 2 && is_leap(year));
    Civil {
        year,
        month,
        day,
        hour: secs / 3600,
        minute: secs / 60 % 60,
        second: secs % 60,
        // 1970-01-01 was a Thursday (3 when Monday is 0).
        weekday: (days + 3).rem_euclid(7) as u32,
        yday,
    }
}

/// The current time in seconds since the epoch (0 if the clock is before 1970).
pub fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Python's `time.strftime(format)` on the UTC time `unix`, for the directives of the C
/// standard plus glibc's `%-d` style (no padding). `%c`, `%x` and `%X` use the C locale.
///
/// # Errors
///
/// An unknown directive, named in the message.
pub fn strftime(format: &str, unix: i64) -> Result<String, String> {
    let t = civil(unix);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = chars.next().ok_or("strftime format ends with a lone %")?;
        let pad = spec != '-';
        if !pad {
            spec = chars.next().ok_or("strftime format ends with %-")?;
        }
        let num = |n: i64, width: usize| {
            if pad {
                format!("{n:0width$}")
            } else {
                n.to_string()
            }
        };
        let hour12 = if t.hour.is_multiple_of(12) {
            12
        } else {
            t.hour % 12
        };
        let piece = match spec {
            'd' => num(t.day.into(), 2),
            'e' => format!("{:>2}", t.day),
            'm' => num(t.month.into(), 2),
            'Y' => t.year.to_string(),
            'y' => num(t.year.rem_euclid(100), 2),
            'H' => num(t.hour.into(), 2),
            'I' => num(hour12.into(), 2),
            'M' => num(t.minute.into(), 2),
            'S' => num(t.second.into(), 2),
            'j' => num(t.yday.into(), 3),
            'p' => if t.hour < 12 { "AM" } else { "PM" }.to_string(),
            'B' => MONTHS[(t.month - 1) as usize].to_string(),
            'b' | 'h' => MONTHS[(t.month - 1) as usize][..3].to_string(),
            'A' => WEEKDAYS[t.weekday as usize].to_string(),
            'a' => WEEKDAYS[t.weekday as usize][..3].to_string(),
            'u' => (t.weekday + 1).to_string(),
            'w' => ((t.weekday + 1) % 7).to_string(),
            'F' => format!("{}-{:02}-{:02}", t.year, t.month, t.day),
            'D' | 'x' => format!("{:02}/{:02}/{:02}", t.month, t.day, t.year.rem_euclid(100)),
            'T' | 'X' => format!("{:02}:{:02}:{:02}", t.hour, t.minute, t.second),
            'R' => format!("{:02}:{:02}", t.hour, t.minute),
            'c' => format!(
                "{} {} {:>2} {:02}:{:02}:{:02} {}",
                &WEEKDAYS[t.weekday as usize][..3],
                &MONTHS[(t.month - 1) as usize][..3],
                t.day,
                t.hour,
                t.minute,
                t.second,
                t.year
            ),
            'Z' => "UTC".to_string(),
            'z' => "+0000".to_string(),
            'n' => "\n".to_string(),
            't' => "\t".to_string(),
            '%' => "%".to_string(),
            other => return Err(format!("strftime directive %{other} is not supported")),
        };
        out.push_str(&piece);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        // 2026-03-05 09:30:00 UTC, a Thursday; 2024-02-29 (leap day); 1969-12-31.
        assert_eq!(
            strftime("%d %b %Y %A %H:%M:%S %j", 1_772_703_000).unwrap(),
            "05 Mar 2026 Thursday 09:30:00 064"
        );
        assert_eq!(
            strftime("%B %-d, %Y (%a) %I %p %y %j", 1_709_208_000).unwrap(),
            "February 29, 2024 (Thu) 12 PM 24 060"
        );
        assert_eq!(strftime("%F %T", -1).unwrap(), "1969-12-31 23:59:59");
        assert_eq!(strftime("%c", 0).unwrap(), "Thu Jan  1 00:00:00 1970");
        assert!(strftime("%Q", 0).unwrap_err().contains("%Q"));
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // Day numbers rise by one per day and months/days stay in range.
        let mut last = civil(-4_000_000_000);
        for day in 1..146_097 {
            let t = civil(-4_000_000_000 + day * 86_400);
            assert!((1..=12).contains(&t.month) && (1..=31).contains(&t.day));
            assert_eq!(t.weekday, (last.weekday + 1) % 7);
            if t.year == last.year {
                assert_eq!(t.yday, last.yday + 1);
            } else {
                assert_eq!((t.yday, t.month, t.day), (1, 1, 1));
                assert_eq!(last.yday, if is_leap(last.year) { 366 } else { 365 });
            }
            last = t;
        }
    }
}
