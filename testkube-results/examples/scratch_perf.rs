use std::time::Instant;
use quick_xml::{Reader, events::Event};
include!("/tmp/gen.rs");
fn raw_scan(bytes: &[u8]) -> usize {
    let mut reader = Reader::from_reader(bytes);
    let mut n = 0;
    loop { match reader.read_event() { Ok(Event::Eof) | Err(_) => break, Ok(e) => { std::hint::black_box(&e); n += 1 } } }
    n
}
fn main() {
    let report = generate_report(50 * 1024 * 1024);
    let mb = report.len() as f64 / 1048576.0;
    let (mut raw, mut parse, mut drop) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..15 {
        let t = Instant::now(); std::hint::black_box(raw_scan(&report)); raw = raw.min(t.elapsed().as_secs_f64());
        let t = Instant::now(); let r = testkube_results::parse_report(&report, "x"); parse = parse.min(t.elapsed().as_secs_f64());
        let t = Instant::now(); std::mem::drop(r); drop = drop.min(t.elapsed().as_secs_f64());
    }
    println!("raw {:.0} MiB/s ({:.1} ms) parse {:.0} MiB/s ({:.1} ms) drop {:.1} ms; parse+drop {:.0} MiB/s", mb/raw, raw*1e3, mb/parse, parse*1e3, drop*1e3, mb/(parse+drop));
}
