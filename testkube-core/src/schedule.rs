//! When `spec.events[].cronjob` schedules run: the next tick, and which
//! tick is due now.
//!
//! Why the rule "a missed schedule runs once": a scheduler that was down
//! (a restart, a lost leader) finds several ticks in the past. Running each
//! would start a burst of identical runs of a workflow whose point is to
//! check the present; running none would hide that the schedule exists. So
//! [`Schedule::due`] answers the latest tick since the last one run, and a
//! scheduler records that tick as run. Sans-IO: the caller keeps the last
//! tick and reads the clock.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed schedule: a cron line (5 fields, 6 with seconds, `@daily`
/// nicknames, `CRON_TZ=`/`TZ=` prefixes) or `@every DURATION`, in a time
/// zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    zone: Tz,
}

#[derive(Debug, Clone)]
enum Kind {
    Cron(Box<Cron>),
    Every(TimeDelta),
}

/// Why a schedule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schedule `{line}`: {reason}")]
pub struct ScheduleError {
    /// The cron line.
    pub line: String,
    /// What is wrong.
    pub reason: String,
}

impl Schedule {
    /// Parses `line` in `timezone` (an IANA name; UTC when `None`; a
    /// `CRON_TZ=` prefix of the line wins).
    ///
    /// # Errors
    /// [`ScheduleError`] for a line or zone that cannot be read.
    pub fn parse(line: &str, timezone: Option<&str>) -> Result<Self, ScheduleError> {
        let error = |reason: String| ScheduleError {
            line: line.to_owned(),
            reason,
        };
        let mut rest = line.trim();
        let mut zone_name = timezone.filter(|zone| !zone.is_empty()).unwrap_or("UTC");
        for prefix in ["CRON_TZ=", "TZ="] {
            if let Some(after) = rest.strip_prefix(prefix) {
                let (zone, schedule) = after.split_once(' ').unwrap_or((after, ""));
                zone_name = zone;
                rest = schedule.trim();
            }
        }
        let zone: Tz = zone_name
            .parse()
            .map_err(|_| error(format!("unknown time zone `{zone_name}`")))?;
        if let Some(interval) = rest.strip_prefix("@every") {
            let duration = crate::model::Duration::from(interval.trim())
                .parse()
                .map_err(|err| error(format!("`@every`: {err}")))?;
            let every = TimeDelta::from_std(duration)
                .ok()
                .filter(|every| *every > TimeDelta::zero())
                .ok_or_else(|| error("`@every` needs a positive duration".to_owned()))?;
            return Ok(Schedule {
                kind: Kind::Every(every),
                zone,
            });
        }
        let rest = if rest.eq_ignore_ascii_case("@midnight") {
            "@daily"
        } else {
            rest
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(rest)
            .map_err(|err| error(err.to_string()))?;
        Ok(Schedule {
            kind: Kind::Cron(Box::new(cron)),
            zone,
        })
    }

    /// The first tick after `at` (`None` when the line never matches
    /// again). `@every` ticks count from `since`, the schedule's start.
    #[must_use]
    pub fn next_after(&self, at: DateTime<Utc>, since: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Cron(cron) => cron
                .find_next_occurrence(&at.with_timezone(&self.zone), false)
                .ok()
                .map(|next| next.with_timezone(&Utc)),
            Kind::Every(every) => {
                if at < since {
                    return Some(since + *every);
                }
                let elapsed = (at - since).num_milliseconds();
                let step = every.num_milliseconds().max(1);
                let ticks = elapsed / step + 1;
                Some(since + TimeDelta::milliseconds(ticks.saturating_mul(step)))
            }
        }
    }

    /// The tick to run now: the latest one after `last` (the tick run
    /// last, or when the schedule was first seen) and not after `now`;
    /// `None` when none has come. Ticks missed while nothing scheduled are
    /// run once, as this one.
    #[must_use]
    pub fn due(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let latest = match &self.kind {
            Kind::Cron(cron) => cron
                .find_previous_occurrence(&now.with_timezone(&self.zone), true)
                .ok()
                .map(|previous| previous.with_timezone(&Utc)),
            Kind::Every(every) => {
                let step = every.num_milliseconds().max(1);
                let elapsed = (now - last).num_milliseconds();
                (elapsed >= step).then(|| last + TimeDelta::milliseconds(elapsed / step * step))
            }
        }?;
        (latest > last && latest <= now).then_some(latest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_missed_schedule_runs_once_at_its_latest_tick() {
        let hourly = Schedule::parse("0 * * * *", None).unwrap();
        let last = at("2026-12-07T08:00:00Z");
        assert_eq!(hourly.due(last, at("2026-12-07T08:59:59Z")), None);
        assert_eq!(
            hourly.due(last, at("2026-12-07T09:00:00Z")),
            Some(at("2026-12-07T09:00:00Z"))
        );
        // Down from 08:30 to 12:10: the 09, 10, 11 and 12 o'clock ticks
        // were missed; one run, as the 12 o'clock one.
        assert_eq!(
            hourly.due(at("2026-12-07T08:00:00Z"), at("2026-12-07T12:10:00Z")),
            Some(at("2026-12-07T12:00:00Z"))
        );
        assert_eq!(
            hourly.due(at("2026-12-07T12:00:00Z"), at("2026-12-07T12:10:00Z")),
            None
        );
        assert_eq!(
            hourly.next_after(at("2026-12-07T12:10:00Z"), last),
            Some(at("2026-12-07T13:00:00Z"))
        );
    }

    #[test]
    fn time_zones_move_the_ticks() {
        let paris = Schedule::parse("0 9 * * *", Some("Europe/Paris")).unwrap();
        let since = at("2026-12-07T00:00:00Z");
        // 09:00 in Paris is 08:00 UTC in winter.
        assert_eq!(
            paris.next_after(since, since),
            Some(at("2026-12-07T08:00:00Z"))
        );
        let prefixed =
            Schedule::parse("CRON_TZ=America/New_York 0 9 * * *", Some("Europe/Paris")).unwrap();
        assert_eq!(
            prefixed.next_after(since, since),
            Some(at("2026-12-07T14:00:00Z"))
        );
        let err = Schedule::parse("0 9 * * *", Some("Mars/Base")).unwrap_err();
        assert_eq!(err.reason, "unknown time zone `Mars/Base`");
    }

    #[test]
    fn every_counts_from_the_start() {
        let every = Schedule::parse("@every 10m", None).unwrap();
        let since = at("2026-12-07T08:00:00Z");
        assert_eq!(
            every.next_after(at("2026-12-07T08:05:00Z"), since),
            Some(at("2026-12-07T08:10:00Z"))
        );
        assert_eq!(every.due(since, at("2026-12-07T08:09:00Z")), None);
        assert_eq!(
            every.due(since, at("2026-12-07T08:35:00Z")),
            Some(at("2026-12-07T08:30:00Z"))
        );
        assert!(Schedule::parse("@every 0s", None).is_err());
        assert!(Schedule::parse("61 * * * *", None).is_err());
    }
}
