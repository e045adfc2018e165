//! Schedules (`spec.events[].cronjob`): a missed schedule runs once after
//! downtime; a new one waits for its next tick.

use std::time::Duration;

use serde_json::Value;

use crate::TestServer;

fn scheduled(dir: &std::path::Path, name: &str, cron: &str) {
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    std::fs::write(
        dir.join("workflows").join(format!("{name}.yaml")),
        format!(
            "apiVersion: testworkflows.testkube.io/v1\nkind: TestWorkflow\nmetadata: {{name: {name}}}\nspec:\n  config:\n    who: {{type: string, default: nobody}}\n  events:\n  - cronjob:\n      cron: '{cron}'\n      config: {{who: cron}}\n      labels: {{source: schedule}}\n  steps:\n  - shell: echo hello {{{{ config.who }}}}\n"
        ),
    )
    .unwrap();
}

async fn executions(server: &TestServer) -> Vec<Value> {
    server.get_json("/v1/test-workflow-executions").await["results"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_schedule_missed_during_downtime_runs_once() {
    let an_hour_ago = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let server = TestServer::scheduling(|dir| {
        scheduled(dir, "minutely", "* * * * *");
        // As a server that stopped an hour ago left it: 60 ticks missed since.
        std::fs::write(
            dir.join("schedules.json"),
            serde_json::json!({"minutely/0/* * * * */": an_hour_ago}).to_string(),
        )
        .unwrap();
    })
    .await;
    let mut found = Vec::new();
    for _ in 0..200 {
        found = executions(&server).await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(found.len(), 1, "{found:?}");
    let done = server.finished(found[0]["id"].as_str().unwrap()).await;
    assert_eq!(done["result"]["status"], "passed");
    assert_eq!(done["configParams"]["who"]["value"], "cron");
    assert_eq!(done["tags"]["source"], "schedule");
    assert_eq!(done["runningContext"]["interface"]["type"], "cron");
    // The tick it ran as is the latest missed one, kept for the next start.
    let ticks: Value =
        serde_json::from_slice(&std::fs::read(server.dir.path().join("schedules.json")).unwrap())
            .unwrap();
    let tick: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(ticks["minutely/0/* * * * */"].clone()).unwrap();
    assert!(
        tick > an_hour_ago + chrono::TimeDelta::minutes(58),
        "{tick}"
    );
    assert_eq!(
        executions(&server).await.len(),
        1,
        "the missed ticks ran once"
    );
}

#[tokio::test]
async fn a_new_schedule_waits_for_its_next_tick() {
    let server = TestServer::scheduling(|dir| scheduled(dir, "yearly", "0 0 1 1 *")).await;
    let file = server.dir.path().join("schedules.json");
    for _ in 0..200 {
        if file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ticks: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(ticks.get("yearly/0/0 0 1 1 */").is_some(), "{ticks}");
    assert!(executions(&server).await.is_empty());
}
