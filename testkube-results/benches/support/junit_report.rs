//! The generated JUnit report the `junit` bench and the `generate_junit` example share, so the
//! bench's figures can be reproduced on a file (peak memory, callgrind).
//!
//! The report is realistic rather than uniform: hundreds of suites with a `<properties>` block of
//! 20 entries, a fifth of the case names with entity-escaped quotes, 4% failures with an escaped
//! message and a 25-frame stack trace, 1% errors, 3% skipped, and `system-out` on a quarter of the
//! passing cases (a bad day on a large Java project).

/// Deterministic pseudo-random numbers (no dependency, same report on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Builds a JUnit report of about `target` bytes.
pub(crate) fn generate_report(target: usize) -> Vec<u8> {
    use std::fmt::Write;
    let mut rng = Lcg(42);
    let mut out = String::with_capacity(target + 64 * 1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"bench\">\n");
    let mut suite = 0;
    while out.len() < target {
        suite += 1;
        let package = ["api", "core", "db", "web", "auth"][suite % 5];
        let class = format!("com.example.{package}.Service{suite}Test");
        let _ = writeln!(
            out,
            "  <testsuite name=\"{class}\" tests=\"0\" failures=\"0\" errors=\"0\" skipped=\"0\" time=\"12.5\" timestamp=\"2024-05-01T10:00:00\" hostname=\"ci-runner-7\">"
        );
        out.push_str("    <properties>\n");
        for p in 0..20 {
            let _ = writeln!(
                out,
                "      <property name=\"java.property.number{p}\" value=\"/usr/lib/jvm/java-17/lib/modules:{p}:/home/ci/.m2/repository\"/>"
            );
        }
        out.push_str("    </properties>\n");
        let cases = 50 + rng.below(100);
        for case in 0..cases {
            let time = rng.below(5_000) as f64 / 1000.0;
            // One name in five carries quoted parameters, escaped as entities.
            let name = if rng.below(5) == 0 {
                format!(
                    "test_{case}_handles &quot;edge&quot; input [{}]",
                    rng.below(1000)
                )
            } else {
                format!("test_{case}_handles_input_{}", rng.below(1000))
            };
            let roll = rng.below(100);
            if roll < 92 {
                if rng.below(4) == 0 {
                    let _ = writeln!(
                        out,
                        "    <testcase name=\"{name}\" classname=\"{class}\" time=\"{time}\">\n      <system-out><![CDATA[INFO starting {case}\nDEBUG connecting to db at localhost:5432\nINFO done in {time}s\n]]></system-out>\n    </testcase>"
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "    <testcase name=\"{name}\" classname=\"{class}\" time=\"{time}\"/>"
                    );
                }
            } else if roll < 96 {
                let _ = writeln!(
                    out,
                    "    <testcase name=\"{name}\" classname=\"{class}\" time=\"{time}\">\n      <failure message=\"expected: &lt;{case}&gt; but was: &lt;{}&gt;\" type=\"org.opentest4j.AssertionFailedError\"><![CDATA[org.opentest4j.AssertionFailedError: expected: <{case}> but was: <{}>",
                    case + 1,
                    case + 1
                );
                for frame in 0..25 {
                    let _ = writeln!(
                        out,
                        "\tat com.example.{package}.Service{suite}Test.method{frame}(Service{suite}Test.java:{})",
                        100 + frame
                    );
                }
                out.push_str("]]></failure>\n      <system-out><![CDATA[INFO request sent\nWARN retrying\nERROR gave up\n]]></system-out>\n    </testcase>\n");
            } else if roll < 97 {
                let _ = writeln!(
                    out,
                    "    <testcase name=\"{name}\" classname=\"{class}\" time=\"{time}\">\n      <error message=\"java.lang.NullPointerException: Cannot invoke &quot;String.length()&quot;\" type=\"java.lang.NullPointerException\">java.lang.NullPointerException: Cannot invoke \"String.length()\"\n\tat com.example.{package}.Service{suite}.run(Service{suite}.java:42)\n\tat com.example.{package}.Service{suite}Test.setUp(Service{suite}Test.java:20)\n</error>\n    </testcase>"
                );
            } else {
                let _ = writeln!(
                    out,
                    "    <testcase name=\"{name}\" classname=\"{class}\" time=\"0\">\n      <skipped message=\"disabled until #{case} is fixed\"/>\n    </testcase>"
                );
            }
        }
        out.push_str("    <system-out><![CDATA[suite log line\n]]></system-out>\n  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out.into_bytes()
}
