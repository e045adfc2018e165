//! Checks of `events`: cron lines, their time zones, and the config values
//! a schedule passes to the workflow.

use super::expressions::ConfigScope;
use super::report::Report;
use super::rules;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::model::{Event, has_template};
use crate::yaml::FieldPath;

/// Checks one `events[]` entry; `scope` holds the workflow's declared parameters.
pub(crate) fn check_event(
    report: &mut Report<'_>,
    path: &FieldPath,
    event: &Event,
    scope: Option<&ConfigScope>,
) {
    let Some(cron) = &event.cronjob else {
        return;
    };
    let cron_path = path.child("cronjob");
    if !has_template(&cron.cron)
        && let Err(reason) = rules::cron_line(&cron.cron)
    {
        report.at(
            &cron_path.child("cron"),
            Diagnostic::error(
                "invalid-cron",
                format!("invalid cron line `{}`: {reason}", cron.cron),
            )
            .with_hint(
                "fields are minute hour day-of-month month day-of-week, e.g. `*/5 * * * *` \
                 (6 fields put seconds first); or use @hourly, @daily, @weekly, @monthly, \
                 @yearly or @every 5m",
            ),
        );
    }
    if let Some(zone) = &cron.timezone
        && !has_template(zone)
        && let Err(suggestion) = rules::timezone(zone)
    {
        let hint = match suggestion {
            Some(close) => format!("did you mean `{close}`?"),
            None => {
                "use an IANA time zone name such as `Europe/Paris`, `America/New_York` or `UTC`"
                    .to_owned()
            }
        };
        report.at(
            &cron_path.child("timezone"),
            Diagnostic::error("invalid-timezone", format!("unknown time zone `{zone}`"))
                .with_hint(hint),
        );
    }
    if let Some(scope) = scope
        && scope.complete
    {
        check_config_values(
            report,
            &cron_path.child("config"),
            cron.config.keys(),
            &scope.names,
        );
    }
}

/// Config values passed to the workflow must name declared parameters.
fn check_config_values<'k>(
    report: &mut Report<'_>,
    path: &FieldPath,
    keys: impl Iterator<Item = &'k String>,
    declared: &[String],
) {
    for key in keys {
        if declared.contains(key) {
            continue;
        }
        let hint = match did_you_mean(key, declared.iter().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None if declared.is_empty() => {
                "the workflow declares no `spec.config` parameters".to_owned()
            }
            None => format!("declared parameters: {}", declared.join(", ")),
        };
        report.at_key(
            &path.child(key.as_str()),
            Diagnostic::error(
                "unknown-config",
                format!("`{key}` is not a parameter of this workflow"),
            )
            .with_hint(hint),
        );
    }
}
