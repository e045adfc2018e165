//! The filters of execution lists: statuses, dates, label and tag
//! selectors, text.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use testkube_core::status::ExecutionStatus;
use testkube_core::store::ExecutionRecord;

use super::executions::ListQuery;
use crate::error::{ApiError, ApiResult};

/// The list's filters, parsed once.
pub(crate) struct Filter {
    statuses: Vec<ExecutionStatus>,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    labels: LabelSelector,
    tags: LabelSelector,
    text: Option<String>,
}

impl Filter {
    pub(crate) fn parse(query: &ListQuery) -> ApiResult<Self> {
        let statuses = match query.status.as_deref() {
            None | Some("") => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|name| {
                    name.trim()
                        .parse::<ExecutionStatus>()
                        .map_err(|err| ApiError::bad_request(format!("`status`: {err}")))
                })
                .collect::<ApiResult<_>>()?,
        };
        Ok(Filter {
            statuses,
            start: date(query.start_date.as_deref(), "startDate", false)?,
            end: date(query.end_date.as_deref(), "endDate", true)?,
            labels: LabelSelector::parse(query.selector.as_deref())?,
            tags: LabelSelector::parse(query.tag_selector.as_deref())?,
            text: query.text_search.clone().filter(|text| !text.is_empty()),
        })
    }

    /// `Some(status)` when the store alone can apply this filter (at most
    /// one status, nothing else): `Some(None)` for no filter at all.
    pub(crate) fn store_status(&self) -> Option<Option<ExecutionStatus>> {
        let only_status = self.start.is_none()
            && self.end.is_none()
            && self.labels.is_empty()
            && self.tags.is_empty()
            && self.text.is_none();
        match self.statuses.as_slice() {
            [] if only_status => Some(None),
            [status] if only_status => Some(Some(*status)),
            _ => None,
        }
    }

    pub(crate) fn matches(&self, record: &ExecutionRecord) -> bool {
        let labels: BTreeMap<String, String> = record
            .snapshot
            .pointer("/metadata/labels")
            .and_then(|labels| serde_json::from_value(labels.clone()).ok())
            .unwrap_or_default();
        (self.statuses.is_empty() || self.statuses.contains(&record.status))
            && self.start.is_none_or(|start| record.scheduled_at >= start)
            && self.end.is_none_or(|end| record.scheduled_at <= end)
            && self.labels.matches(&labels)
            && self.tags.matches(&record.tags)
            && self
                .text
                .as_ref()
                .is_none_or(|text| record.name.contains(text.as_str()))
    }
}

/// `2026-12-07` (the whole day) or an RFC 3339 time.
fn date(text: Option<&str>, name: &str, end_of_day: bool) -> ApiResult<Option<DateTime<Utc>>> {
    let Some(text) = text.filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(format!(
            "`{name}` is `{text}`; give a date (2026-12-07) or an RFC 3339 time"
        ))
    })?;
    let time = if end_of_day {
        day.and_hms_milli_opt(23, 59, 59, 999)
    } else {
        day.and_hms_opt(0, 0, 0)
    };
    Ok(time.map(|time| time.and_utc()))
}

/// A Kubernetes equality selector: `k=v`, `k!=v`, `k` (has), comma-separated.
#[derive(Debug, Default)]
pub(crate) struct LabelSelector {
    requirements: Vec<(String, Requirement)>,
}

#[derive(Debug)]
enum Requirement {
    Equals(String),
    Differs(String),
    Exists,
}

impl LabelSelector {
    pub(crate) fn parse(text: Option<&str>) -> ApiResult<Self> {
        let mut requirements = Vec::new();
        for part in text.unwrap_or_default().split(',').map(str::trim) {
            if part.is_empty() {
                continue;
            }
            let (key, requirement) = if let Some((key, value)) = part.split_once("!=") {
                (key, Requirement::Differs(value.trim().to_owned()))
            } else if let Some((key, value)) =
                part.split_once("==").or_else(|| part.split_once('='))
            {
                (key, Requirement::Equals(value.trim().to_owned()))
            } else {
                (part, Requirement::Exists)
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "the selector part `{part}` has no key; write `key=value`, `key!=value` or `key`"
                )));
            }
            requirements.push((key.to_owned(), requirement));
        }
        Ok(LabelSelector { requirements })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|(key, requirement)| match requirement {
                Requirement::Equals(value) => labels.get(key) == Some(value),
                Requirement::Differs(value) => labels.get(key) != Some(value),
                Requirement::Exists => labels.contains_key(key),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_read_as_kubernetes_ones() {
        let labels = BTreeMap::from([
            ("team".to_owned(), "web".to_owned()),
            ("tier".to_owned(), "smoke".to_owned()),
        ]);
        let matches = |text: &str| LabelSelector::parse(Some(text)).unwrap().matches(&labels);
        assert!(matches("team=web"));
        assert!(matches("team==web,tier"));
        assert!(matches("team!=api"));
        assert!(!matches("team=api"));
        assert!(!matches("owner"));
        assert!(matches(""));
        assert!(LabelSelector::parse(Some("=x")).is_err());
    }

    #[test]
    fn dates_are_days_or_times() {
        let start = date(Some("2026-12-07"), "startDate", false)
            .unwrap()
            .unwrap();
        assert_eq!(start.to_rfc3339(), "2026-12-07T00:00:00+00:00");
        let end = date(Some("2026-12-07"), "endDate", true).unwrap().unwrap();
        assert_eq!(end.to_rfc3339(), "2026-12-07T23:59:59.999+00:00");
        assert!(date(Some("yesterday"), "startDate", false).is_err());
        assert_eq!(date(None, "startDate", false).unwrap(), None);
    }
}
