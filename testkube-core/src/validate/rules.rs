//! The syntax rules of single values: resource names, step ids, cron lines,
//! time zones, quantities, URLs. Pure functions, so each rule is tested on
//! its own; the checks in the sibling modules decide where they apply.

use croner::parser::{CronParser, Seconds, Year};

use crate::diagnostic::did_you_mean;

/// IANA zone names, one per line (see the file's header for its source).
const TIMEZONES: &str = include_str!("timezones.txt");

/// Checks a Kubernetes resource name (DNS-1123 subdomain: lower-case
/// letters, digits, `-` and `.`, starting and ending with a letter or digit,
/// at most 253 characters). Returns what is wrong.
pub(crate) fn dns1123_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".to_owned());
    }
    if name.len() > 253 {
        return Err(format!(
            "the name is {} characters long (at most 253)",
            name.len()
        ));
    }
    for label in name.split('.') {
        dns1123_label_chars(label)?;
    }
    Ok(())
}

/// Checks a DNS-1123 label (a namespace): like a subdomain without dots, at
/// most 63 characters.
pub(crate) fn dns1123_label(name: &str) -> Result<(), String> {
    if name.len() > 63 {
        return Err(format!(
            "`{name}` is {} characters long (at most 63)",
            name.len()
        ));
    }
    dns1123_label_chars(name)
}

fn dns1123_label_chars(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("it has an empty part between dots".to_owned());
    }
    if let Some(bad) = label
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(if bad.is_ascii_uppercase() {
            "it contains upper-case letters".to_owned()
        } else {
            format!("it contains `{bad}`")
        });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("it starts or ends with `-`".to_owned());
    }
    Ok(())
}

/// A DNS-1123 name close to `name`: lower-cased, other characters replaced
/// by `-`, trimmed.
pub(crate) fn suggest_dns_name(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    mapped.trim_matches(|c| c == '-' || c == '.').to_owned()
}

/// Whether `id` is a valid step id: lower-case letters, digits and `_`.
pub(crate) fn is_step_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A valid step id close to `id`.
pub(crate) fn suggest_step_id(id: &str) -> String {
    id.chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect()
}

/// Parses a cron line the way schedules are read: 5 fields, 6 with
/// seconds first, a nickname (`@daily`, `@midnight`, ...) or `@every
/// <duration>`, optionally prefixed by `CRON_TZ=<zone> `. Returns what is
/// wrong.
pub(crate) fn cron_line(line: &str) -> Result<(), String> {
    let mut line = line.trim();
    for prefix in ["CRON_TZ=", "TZ="] {
        if let Some(rest) = line.strip_prefix(prefix) {
            let (zone, schedule) = rest.split_once(' ').unwrap_or((rest, ""));
            if timezone(zone).is_err() {
                return Err(format!("unknown time zone `{zone}` in `{prefix}`"));
            }
            line = schedule.trim();
        }
    }
    if let Some(interval) = line.strip_prefix("@every") {
        let interval = interval.trim();
        return match crate::model::Duration::from(interval).parse() {
            Ok(duration) if !duration.is_zero() => Ok(()),
            Ok(_) => Err("`@every` needs a positive duration".to_owned()),
            Err(error) => Err(format!("`@every`: {error}")),
        };
    }
    if line.eq_ignore_ascii_case("@midnight") {
        line = "@daily";
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build();
    match parser.parse(line) {
        Ok(_) => Ok(()),
        Err(error) => Err(cron_fields_problem(line).unwrap_or_else(|| croner_words(&error))),
    }
}

/// The fields of a cron line, with their ranges, as [`cron_fields_problem`]
/// names them.
const CRON_FIELDS: [(&str, u32, u32); 6] = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// What is wrong with a cron line croner refused, said in terms of its
/// fields: how many there are, or which field holds which bad value and
/// what the field allows. `None` when the fields look right (croner's own
/// reason is used then).
fn cron_fields_problem(line: &str) -> Option<String> {
    if line.is_empty() {
        return Some("the line is empty".to_owned());
    }
    if line.starts_with('@') {
        return Some(format!(
            "`{line}` is not a known shorthand (use @hourly, @daily, @weekly, @monthly, \
             @yearly or @every <duration>)"
        ));
    }
    let fields: Vec<&str> = line.split_whitespace().collect();
    let names = match fields.len() {
        5 => &CRON_FIELDS[1..],
        6 => &CRON_FIELDS[..],
        count => {
            return Some(format!(
                "it has {count} field{}; expected 5 (minute hour day-of-month month \
                 day-of-week), or 6 with seconds first",
                if count == 1 { "" } else { "s" }
            ));
        }
    };
    for (field, &(name, low, high)) in fields.iter().zip(names) {
        if let Some(problem) = cron_field_problem(field, name, low, high) {
            return Some(problem);
        }
    }
    None
}

/// The first bad value of one field (`61` in the minute field), if any.
fn cron_field_problem(field: &str, name: &str, low: u32, high: u32) -> Option<String> {
    let out_of_range = |value: &str| {
        format!("the {name} field has `{value}`, out of range: {name} goes from {low} to {high}")
    };
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (part, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(0) => return Some(format!("the {name} field has a step of 0 in `{part}`")),
                Ok(_) => {}
                Err(_) => {
                    return Some(format!(
                        "the {name} field has `{part}`: the step after `/` must be a number"
                    ));
                }
            }
        }
        if range == "*" || range == "?" {
            continue;
        }
        // `L`, `W` and `#` (last day, weekday, nth weekday) are croner's
        // business.
        if range.contains(['L', 'l', 'W', 'w', '#']) {
            continue;
        }
        let bounds: Vec<&str> = range.split('-').collect();
        if bounds.len() > 2 || bounds.iter().any(|bound| bound.is_empty()) {
            return Some(format!(
                "the {name} field has `{part}`, which is not a value, a range `a-b` or `*`"
            ));
        }
        for bound in bounds {
            match bound.parse::<u32>() {
                Ok(value) if value < low || value > high => return Some(out_of_range(bound)),
                Ok(_) => {}
                Err(_) => {
                    let upper = bound.to_ascii_uppercase();
                    let named = match name {
                        "month" => MONTH_NAMES.contains(&upper.as_str()),
                        "day-of-week" => DAY_NAMES.contains(&upper.as_str()),
                        _ => false,
                    };
                    if !named {
                        return Some(format!(
                            "the {name} field has `{bound}`, which is not a number{}",
                            match name {
                                "month" => " or a month name (JAN-DEC)",
                                "day-of-week" => " or a day name (SUN-SAT)",
                                _ => "",
                            }
                        ));
                    }
                }
            }
        }
    }
    None
}

/// croner's reason without its prefixes ("Component error: ...").
fn croner_words(error: &croner::errors::CronError) -> String {
    let text = error.to_string();
    let text = [
        "Component error: ",
        "Invalid pattern: ",
        "Pattern contains ",
    ]
    .iter()
    .find_map(|prefix| text.strip_prefix(prefix))
    .unwrap_or(&text);
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_owned(),
    }
}

/// Whether `name` is an IANA time zone; on failure, the closest known name.
pub(crate) fn timezone(name: &str) -> Result<(), Option<&'static str>> {
    let known = || TIMEZONES.lines().filter(|line| !line.starts_with('#'));
    if known().any(|zone| zone == name) {
        return Ok(());
    }
    Err(did_you_mean(name, known()))
}

/// Whether `text` is a Kubernetes quantity (`500m`, `1Gi`, `2`, `1e3`, `0.5`).
pub(crate) fn is_quantity(text: &str) -> bool {
    let text = text.trim();
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let number_len = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(number_len);
    let digits_ok = !number.is_empty() && number != "." && number.matches('.').count() <= 1;
    let suffix_ok = matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    ) || is_decimal_exponent(suffix);
    digits_ok && suffix_ok
}

fn is_decimal_exponent(suffix: &str) -> bool {
    let Some(rest) = suffix.strip_prefix(['e', 'E']) else {
        return false;
    };
    let rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit())
}

/// Checks an http(s) URL: scheme, then a non-empty host. Returns what is wrong.
pub(crate) fn http_url(text: &str) -> Result<(), String> {
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(format!("`{text}` has no scheme (expected `https://...`)"));
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!("scheme `{scheme}` is not http or https"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("`{text}` has no host"));
    }
    if text.chars().any(char::is_whitespace) {
        return Err(format!("`{text}` contains whitespace"));
    }
    Ok(())
}

/// A tarball source: an http(s) URL, a `file://` URL, or a path (absolute,
/// or relative to the worker's `/data`), as the local runner accepts.
pub(crate) fn tarball_source(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("the URL is empty".to_owned());
    }
    match text.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("file") => {
            if rest.is_empty() {
                Err(format!("`{text}` names no file"))
            } else {
                Ok(())
            }
        }
        Some(_) => http_url(text),
        None => Ok(()),
    }
}

/// Whether an artifact archive name has a supported extension.
pub(crate) fn is_archive_name(name: &str) -> bool {
    name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_follow_dns1123() {
        assert!(dns1123_subdomain("k6-load.test-1").is_ok());
        assert!(dns1123_subdomain("My-Workflow").is_err());
        assert!(dns1123_subdomain("-lead").is_err());
        assert!(dns1123_subdomain("a_b").is_err());
        assert!(dns1123_subdomain(&"a".repeat(254)).is_err());
        assert!(dns1123_label("team.a").is_err());
        assert_eq!(suggest_dns_name("My_Workflow!"), "my-workflow");
    }

    #[test]
    fn step_ids_are_lower_alnum_and_underscore() {
        assert!(is_step_id("run_tests_2"));
        assert!(!is_step_id("run-tests"));
        assert!(!is_step_id("Run"));
        assert!(!is_step_id(""));
        assert_eq!(suggest_step_id("Run-Tests"), "run_tests");
    }

    #[test]
    fn cron_lines_with_five_or_six_fields_and_nicknames() {
        for ok in [
            "*/5 * * * *",
            "0 0 * * MON-FRI",
            "30 */2 * * * *",
            "@daily",
            "@midnight",
            "@every 1h30m",
            "CRON_TZ=Europe/Paris 0 9 * * *",
        ] {
            assert_eq!(cron_line(ok), Ok(()), "{ok}");
        }
        let reasons = [
            (
                "61 * * * *",
                "the minute field has `61`, out of range: minute goes from 0 to 59",
            ),
            (
                "0 24 * * *",
                "the hour field has `24`, out of range: hour goes from 0 to 23",
            ),
            (
                "0 0 0 * *",
                "the day-of-month field has `0`, out of range: day-of-month goes from 1 to 31",
            ),
            (
                "0 0 * 1-13 *",
                "the month field has `13`, out of range: month goes from 1 to 12",
            ),
            (
                "0 0 * FOO *",
                "the month field has `FOO`, which is not a number or a month name (JAN-DEC)",
            ),
            ("*/0 * * * *", "the minute field has a step of 0 in `*/0`"),
            (
                "* * *",
                "it has 3 fields; expected 5 (minute hour day-of-month month day-of-week), or 6 with seconds first",
            ),
            (
                "60 * * * * *",
                "the second field has `60`, out of range: second goes from 0 to 59",
            ),
        ];
        for (line, reason) in reasons {
            assert_eq!(cron_line(line), Err(reason.to_owned()), "{line}");
        }
        for bad in [
            "* * *",
            "61 * * * *",
            "@sometimes",
            "0 0 * * * * 2030",
            "",
            "@every 5 minutes",
            "CRON_TZ=Mars/Base 0 9 * * *",
        ] {
            assert!(cron_line(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timezones_are_iana_names_with_suggestions() {
        assert_eq!(timezone("Europe/Paris"), Ok(()));
        assert_eq!(timezone("UTC"), Ok(()));
        assert_eq!(timezone("Asia/Calcutta"), Ok(()));
        assert_eq!(timezone("Europe/Pariss"), Err(Some("Europe/Paris")));
        assert_eq!(timezone("Mars/Olympus"), Err(None));
    }

    #[test]
    fn quantities() {
        for ok in ["500m", "1Gi", "2", "0.5", "1e3", "128974848", "1.5G"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["1GB", "one", "", "1.2.3", "Gi", "512 Mi"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert!(http_url("https://hooks.slack.com/services/T0/B0").is_ok());
        assert!(http_url("http://user:pw@host:8080/x?y").is_ok());
        assert!(http_url("hooks.slack.com/x").is_err());
        assert!(http_url("ftp://host").is_err());
        assert!(http_url("https:///path").is_err());
        assert!(tarball_source("https://example.com/t.tar.gz").is_ok());
        assert!(tarball_source("file:///srv/t.tgz").is_ok());
        assert!(tarball_source("/srv/t.tgz").is_ok());
        assert!(tarball_source("fixtures/t.tgz").is_ok());
        assert!(tarball_source("ftp://host/t.tgz").is_err());
        assert!(tarball_source("file://").is_err());
        assert!(tarball_source(" ").is_err());
    }
}
