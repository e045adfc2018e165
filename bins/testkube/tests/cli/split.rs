//! `testkube split` end to end: items, `--timings` paths and globs, the refusals that keep a split
//! from being quietly wrong, and the examples of `--help`, the README and docs/cli.md run as
//! written.

use std::path::Path;
use std::process::Command;

use super::{data, json, stderr, stdout, testkube, testkube_stdin, write};

const TIMINGS: &str = r#"{"a.py": 10, "b.py": 9, "c.py": 2, "d.py": 2, "e.py": 1}"#;

#[test]
fn split_prints_one_shard_per_index_and_covers_every_item_once() {
    let dir = tempfile::tempdir().unwrap();
    let timings = write(dir.path(), "t.json", TIMINGS);
    let items = "a.py\nb.py\nc.py\nd.py\ne.py\nnew.py\n";
    let mut seen = Vec::new();
    for index in 0..3 {
        let out = testkube_stdin(
            &[
                "split",
                "--total",
                "3",
                "--index",
                &index.to_string(),
                "--timings",
                timings.to_str().unwrap(),
            ],
            Some(items),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        seen.extend(stdout(&out).lines().map(str::to_string));
    }
    seen.sort();
    assert_eq!(seen, ["a.py", "b.py", "c.py", "d.py", "e.py", "new.py"]);
}

#[test]
fn split_all_json_balances_by_duration() {
    let dir = tempfile::tempdir().unwrap();
    let timings = write(dir.path(), "t.json", TIMINGS);
    let out = testkube(&[
        "split",
        "--total",
        "2",
        "--all",
        "-o",
        "json",
        "--timings",
        timings.to_str().unwrap(),
        "--",
        "a.py",
        "b.py",
        "c.py",
        "d.py",
        "e.py",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = json(&out);
    // 24 s of work over 2 shards: {a, e, ...} = 12 against the contiguous split's 21.
    assert_eq!(plan["makespanSeconds"], 12.0);
    assert_eq!(plan["lowerBoundSeconds"], 12.0);
    let shards = plan["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    let predicted: Vec<f64> = shards
        .iter()
        .map(|s| s["predictedSeconds"].as_f64().unwrap())
        .collect();
    assert_eq!(predicted, [12.0, 12.0]);
}

#[test]
fn split_is_deterministic_and_reads_junit_timings() {
    let items = "io.example.Slow\nio.example.Fast\nio.example.Medium\nio.example.Unknown\n";
    let report = data("timings-junit.xml");
    let args = [
        "split",
        "--total",
        "2",
        "--all",
        "-o",
        "json",
        "--by",
        "classname",
        "--timings",
        &report,
    ];
    let first = testkube_stdin(&args, Some(items));
    let second = testkube_stdin(&args, Some(items));
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(first.stdout, second.stdout, "same input, same split");
    let plan = json(&first);
    assert_eq!(plan["itemsWithTimings"], 3);
    let shards = plan["shards"].as_array().unwrap();
    let slow_shard = shards
        .iter()
        .find(|s| {
            s["items"]
                .as_array()
                .unwrap()
                .contains(&"io.example.Slow".into())
        })
        .unwrap();
    assert_eq!(
        slow_shard["items"].as_array().unwrap().len(),
        1,
        "the slow class runs alone: {plan}"
    );
}

#[test]
fn split_rejects_an_index_out_of_range_with_exit_two() {
    let out = testkube(&["split", "--total", "3", "--index", "3", "--", "a", "b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("use 0 to 2"), "{}", stderr(&out));
}

#[test]
fn split_reports_an_unreadable_timings_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.xml", "<testsuite><testcase name='x'>");
    let out = testkube(&[
        "split",
        "--total",
        "2",
        "--index",
        "0",
        "--timings",
        bad.to_str().unwrap(),
        "--",
        "a",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.xml"), "{}", stderr(&out));
}

#[test]
fn split_suggests_a_shard_count_for_a_target_time() {
    let dir = tempfile::tempdir().unwrap();
    let timings = write(dir.path(), "t.json", TIMINGS);
    let args = [
        "split",
        "--suggest-for",
        "12",
        "--timings",
        timings.to_str().unwrap(),
        "--",
        "a.py",
        "b.py",
        "c.py",
        "d.py",
        "e.py",
    ];
    let out = testkube(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "2",
        "24 s of work fits 12 s on two shards"
    );
    let mut json_args = args.to_vec();
    json_args.splice(1..1, ["-o", "json"]);
    let suggestion = json(&testkube(&json_args));
    assert_eq!(suggestion["suggestedTotal"], 2);
    assert_eq!(suggestion["meetsTarget"], true);
}

#[test]
fn split_caps_total_and_dedupes_paths() {
    let out = testkube(&["split", "--total", "99999999999", "--index", "0", "--", "a"]);
    assert_eq!(out.status.code(), Some(2));
    let out = testkube(&[
        "split", "--total", "1", "--index", "0", "--", "./a.py", "a.py", "b.py",
    ]);
    assert_eq!(stdout(&out), "./a.py\nb.py\n", "one file, one run");
}

/// Three reports of one CI run, as `--timings reports/*.xml` hands them over.
fn shard_reports(dir: &Path) -> Vec<String> {
    let report = |cases: &str| format!("<testsuite name=\"shard\">{cases}</testsuite>");
    [
        (
            "junit-0.xml",
            r#"<testcase file="a.py" name="t" time="10"/>"#,
        ),
        (
            "junit-1.xml",
            r#"<testcase file="b.py" name="t" time="6"/><testcase file="c.py" name="t" time="4"/>"#,
        ),
        (
            "junit-2.xml",
            r#"<testcase file="d.py" name="t" time="5"/><testcase file="e.py" name="t" time="5"/>"#,
        ),
    ]
    .iter()
    .map(|(name, cases)| write(dir, name, &report(cases)).display().to_string())
    .collect()
}

#[test]
fn split_timings_takes_every_file_a_shell_glob_expands_to() {
    let dir = tempfile::tempdir().unwrap();
    let reports = shard_reports(dir.path());
    let mut args = vec!["split", "--by", "file", "--timings"];
    args.extend(reports.iter().map(String::as_str));
    args.extend(["--total", "3", "--all", "-o", "json", "--"]);
    args.extend(["a.py", "b.py", "c.py", "d.py", "e.py"]);
    let out = testkube(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = json(&out);
    assert_eq!(plan["itemsWithTimings"], 5, "every report is read: {plan}");
    assert_eq!(plan["makespanSeconds"], 10.0);

    // A folder of reports reads the same, items from standard input.
    let folder = dir.path().display().to_string();
    let from_folder = testkube_stdin(
        &[
            "split",
            "--by",
            "file",
            "--timings",
            &folder,
            "--total",
            "3",
            "--all",
            "-o",
            "json",
        ],
        Some("a.py\nb.py\nc.py\nd.py\ne.py\n"),
    );
    assert_eq!(
        from_folder.status.code(),
        Some(0),
        "{}",
        stderr(&from_folder)
    );
    assert_eq!(json(&from_folder), plan);
}

#[test]
fn split_refuses_items_that_are_timings_files_or_missing_dashes() {
    let dir = tempfile::tempdir().unwrap();
    let reports = shard_reports(dir.path());
    // `ls reports/*` piped in: a report is not an item.
    let mut args = vec!["split", "--total", "2", "--index", "0", "--timings"];
    args.extend(reports.iter().map(String::as_str));
    let out = testkube_stdin(&args, Some(&format!("a.py\n{}\n", reports[1])));
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("is one of the --timings files") && stderr(&out).contains("`--`"),
        "{}",
        stderr(&out)
    );
    // Items left before `--` are not split silently.
    let mut loose = vec![
        "split",
        "--total",
        "2",
        "--index",
        "0",
        "--timings",
        &reports[0],
    ];
    loose.extend(["--by", "file", "a.py"]);
    let out = testkube(&loose);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("-- a.py"), "{}", stderr(&out));
    // Nothing to split at all (stdin empty) is an error too, not an empty shard.
    let out = testkube_stdin(&["split", "--total", "2", "--index", "0"], Some(""));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no items to split"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn split_warns_loudly_when_no_item_matches_a_timing() {
    let dir = tempfile::tempdir().unwrap();
    let reports = shard_reports(dir.path());
    // By name the items are files: nothing matches.
    let mut args = vec!["split", "--total", "2", "--index", "0", "--timings"];
    args.extend(reports.iter().map(String::as_str));
    args.extend(["--", "a.py", "b.py"]);
    let out = testkube(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: none of the 2 items matched a timing (by name) in 3 files"),
        "{}",
        stderr(&out)
    );
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = testkube(&[
        "split",
        "--total",
        "2",
        "--index",
        "0",
        "--timings",
        empty.to_str().unwrap(),
        "--",
        "a",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("holds no test report"),
        "{}",
        stderr(&out)
    );
}

/// The shell commands of an example block: `\\`-continued lines and `|` pipelines joined,
/// comments dropped.
fn shell_commands(block: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        current.push_str(line.trim_end_matches('\\'));
        current.push(' ');
        if !(line.ends_with('\\') || line.ends_with('|')) {
            commands.push(std::mem::take(&mut current));
        }
    }
    commands
}

/// Runs each command with `sh` from the repository root, the built `testkube` first on the PATH.
fn run_as_written(commands: &[String]) {
    let bin = Path::new(env!("CARGO_BIN_EXE_testkube")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for command in commands {
        let out = Command::new("sh")
            .args(["-c", command])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{command}: {}", stderr(&out));
        assert!(!stdout(&out).is_empty(), "{command}");
        assert!(
            !stderr(&out).contains("warning"),
            "{command}: {}",
            stderr(&out)
        );
    }
}

/// The first fenced block after `heading` in a document of the repository.
fn example_block(document: &str, heading: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(document);
    let text = std::fs::read_to_string(&path).unwrap();
    let section = text
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("{heading}"));
    section
        .split("```sh")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .unwrap_or_else(|| panic!("no example under {heading}"))
        .to_owned()
}

#[test]
fn split_examples_in_help_readme_and_docs_run_as_written() {
    let help = stdout(&testkube(&["split", "--help"]));
    let examples = help.split("Examples").nth(1).expect("an Examples section");
    let from_help = shell_commands(examples.split_once('\n').map_or("", |(_, rest)| rest));
    assert!(from_help.len() >= 4, "{from_help:?}");
    assert!(
        from_help.iter().any(|c| c.contains("--by file")),
        "{from_help:?}"
    );
    run_as_written(&from_help);
    let top = stdout(&testkube(&["--help"]));
    let top_examples = top.split("Examples:").nth(1).expect("an Examples section");
    let split_example: Vec<String> = shell_commands(top_examples)
        .into_iter()
        .filter(|command| command.starts_with("testkube split"))
        .collect();
    assert_eq!(split_example.len(), 1, "{top_examples}");
    run_as_written(&split_example);
    for (document, heading) in [
        ("README.md", "### Split tests across CI jobs by duration"),
        ("docs/cli.md", "## `testkube split"),
    ] {
        let commands = shell_commands(&example_block(document, heading));
        assert!(commands.len() >= 3, "{document}: {commands:?}");
        run_as_written(&commands);
    }
}
