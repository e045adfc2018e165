//! `date(format?)`: the current UTC time formatted with a Go layout string,
//! as in Testkube (`date("2006-01-02")` gives `"2024-06-04"`). The default
//! layout is `2006-01-02T15:04:05.000Z07:00`.
//!
//! The clock comes from the context; without one `date()` stays symbolic so
//! that planning gives the same result every time.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::Value;

use super::CallResult;
use crate::expr::context::Context;
use crate::expr::value::to_text;

const DEFAULT_LAYOUT: &str = "2006-01-02T15:04:05.000Z07:00";

pub(super) fn call(args: &[Value], ctx: &dyn Context) -> CallResult {
    let Some(now) = ctx.now() else {
        return Ok(None);
    };
    let layout = args
        .first()
        .map_or_else(|| DEFAULT_LAYOUT.to_string(), to_text);
    Ok(Some(Value::String(format_go(&now, &layout))))
}

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
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Formats a UTC time with Go's reference-time layout elements; any other
/// text is copied as is.
pub(crate) fn format_go(t: &DateTime<Utc>, layout: &str) -> String {
    let mut out = String::with_capacity(layout.len() + 8);
    let mut rest = layout;
    let month = t.month0() as usize;
    let day = t.weekday().num_days_from_monday() as usize;
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    while let Some(c) = rest.chars().next() {
        // Longest elements first so `2006` wins over `2` and `January` over `Jan`.
        let (text, len) = if let Some(n) = fraction_len(rest) {
            let trim = rest.as_bytes()[1] == b'9';
            (fraction(t.nanosecond(), n - 1, trim, &rest[..1]), n)
        } else if let Some((element, len)) = ELEMENTS.iter().find_map(|(e, f)| {
            rest.starts_with(e)
                .then(|| (f(t, month, day, hour12), e.len()))
        }) {
            (element, len)
        } else {
            (c.to_string(), c.len_utf8())
        };
        out.push_str(&text);
        rest = &rest[len..];
    }
    out
}

type Element = fn(&DateTime<Utc>, usize, usize, u32) -> String;

static ELEMENTS: &[(&str, Element)] = &[
    ("January", |_, m, _, _| MONTHS[m].to_string()),
    ("Monday", |_, _, d, _| DAYS[d].to_string()),
    ("Jan", |_, m, _, _| MONTHS[m][..3].to_string()),
    ("Mon", |_, _, d, _| DAYS[d][..3].to_string()),
    ("MST", |_, _, _, _| "UTC".to_string()),
    ("2006", |t, _, _, _| format!("{:04}", t.year())),
    ("Z07:00:00", |_, _, _, _| "Z".to_string()),
    ("-07:00:00", |_, _, _, _| "+00:00:00".to_string()),
    ("Z07:00", |_, _, _, _| "Z".to_string()),
    ("-07:00", |_, _, _, _| "+00:00".to_string()),
    ("Z0700", |_, _, _, _| "Z".to_string()),
    ("-0700", |_, _, _, _| "+0000".to_string()),
    ("Z07", |_, _, _, _| "Z".to_string()),
    ("-07", |_, _, _, _| "+00".to_string()),
    ("002", |t, _, _, _| format!("{:03}", t.ordinal())),
    ("__2", |t, _, _, _| format!("{:>3}", t.ordinal())),
    ("01", |t, _, _, _| format!("{:02}", t.month())),
    ("02", |t, _, _, _| format!("{:02}", t.day())),
    ("_2", |t, _, _, _| format!("{:>2}", t.day())),
    ("03", |_, _, _, h| format!("{h:02}")),
    ("04", |t, _, _, _| format!("{:02}", t.minute())),
    ("05", |t, _, _, _| format!("{:02}", t.second())),
    ("06", |t, _, _, _| {
        format!("{:02}", t.year().rem_euclid(100))
    }),
    ("15", |t, _, _, _| format!("{:02}", t.hour())),
    ("PM", |t, _, _, _| {
        if t.hour() >= 12 { "PM" } else { "AM" }.to_string()
    }),
    ("pm", |t, _, _, _| {
        if t.hour() >= 12 { "pm" } else { "am" }.to_string()
    }),
    ("1", |t, _, _, _| t.month().to_string()),
    ("2", |t, _, _, _| t.day().to_string()),
    ("3", |_, _, _, h| h.to_string()),
    ("4", |t, _, _, _| t.minute().to_string()),
    ("5", |t, _, _, _| t.second().to_string()),
];

/// Length of a fractional-seconds element (`.000`, `,999`) at the start.
fn fraction_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !matches!(b.first(), Some(b'.' | b',')) {
        return None;
    }
    let digit = *b.get(1)?;
    if digit != b'0' && digit != b'9' {
        return None;
    }
    let n = b[1..].iter().take_while(|c| **c == digit).count();
    // Go only treats it as a fraction when no digit follows the run.
    if b.get(1 + n).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    Some(1 + n)
}

/// `digits` digits of the fraction; with `trim` (the `9` form) trailing zeros
/// and a then-empty fraction are dropped.
fn fraction(nanos: u32, digits: usize, trim: bool, separator: &str) -> String {
    let all = format!("{:09}", nanos.min(999_999_999));
    let mut frac = all[..digits.min(9)].to_string();
    if trim {
        while frac.ends_with('0') {
            frac.pop();
        }
        if frac.is_empty() {
            return String::new();
        }
    }
    format!("{separator}{frac}")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn go_layouts() {
        let t = Utc.with_ymd_and_hms(2009, 1, 2, 15, 4, 5).unwrap()
            + chrono::Duration::nanoseconds(120_000_000);
        assert_eq!(format_go(&t, DEFAULT_LAYOUT), "2009-01-02T15:04:05.120Z");
        assert_eq!(
            format_go(&t, "Mon Jan _2 3:4:5 PM MST 2006"),
            "Fri Jan  2 3:4:5 PM UTC 2009"
        );
        assert_eq!(format_go(&t, "2006.999"), "2009.12");
        assert_eq!(format_go(&t, "05,000000"), "05,120000");
        assert_eq!(format_go(&t, "06 pm __2 002"), "09 pm   2 002");
        assert_eq!(format_go(&t, "no layout: xyz"), "no layout: xyz");
        // `.0001` is not a fraction element (a digit follows the run): `01` is the month.
        assert_eq!(format_go(&t, ".0001"), ".0001");
    }
}
