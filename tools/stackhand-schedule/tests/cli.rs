//! `stackhand-schedule` through its binary: exit codes, stdin, and months computed by hand.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stackhand-schedule"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn definitions() -> tempfile_path::Path {
    tempfile_path::write(
        r#"{"office": "Mon-Fri 08:00-19:00 Europe/London except uk", "holidays": {"uk": ["2026-12-25"]}}"#,
    )
}

/// A file in the target's temporary directory, removed when dropped.
mod tempfile_path {
    pub struct Path(pub std::path::PathBuf);
    impl Drop for Path {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    pub fn write(contents: &str) -> Path {
        let path = std::env::temp_dir().join(format!(
            "stackhand-schedule-{}-{:?}.json",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, contents).unwrap();
        Path(path)
    }
}

#[test]
fn check_exits_0_for_good_values_and_1_with_the_error_and_its_fix_for_bad_ones() {
    let good = run(&["check", "Mon-Fri 08:00-19:00 Europe/London"], None);
    assert_eq!(good.status.code(), Some(0), "{good:?}");
    assert_eq!(text(&good), "ok: Mon-Fri 08:00-19:00 Europe/London: Mon-Fri 08:00-19:00 Europe/London\n");
    let bad = run(&["check", "Mon-Fr 08:00-19:00"], None);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    assert!(text(&bad).starts_with("error: Mon-Fr 08:00-19:00: "), "{}", text(&bad));
    let named = run(&["check", "office"], None);
    assert_eq!(named.status.code(), Some(1));
    assert!(text(&named).contains("give --definitions FILE or --parameter NAME"), "{}", text(&named));
}

#[test]
fn check_reads_many_values_from_stdin_and_resolves_names_with_definitions() {
    let file = definitions();
    let path = file.0.to_str().unwrap();
    let lines = "office\n\nWeekdays 09:00-17:00 UTC\nnope-not-defined\n";
    let out = run(&["check", "--definitions", path], Some(lines));
    assert_eq!(out.status.code(), Some(1), "one bad line fails the check");
    let printed = text(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 3, "{printed}");
    assert_eq!(lines[0], "ok: office: Mon-Fri 08:00-19:00 Europe/London except uk");
    assert!(lines[1].starts_with("ok: Weekdays 09:00-17:00 UTC: "), "{printed}");
    assert!(lines[2].starts_with("error: nope-not-defined: "), "{printed}");
    let fine = run(&["check", "--definitions", path], Some("office\n"));
    assert_eq!(fine.status.code(), Some(0));
}

#[test]
fn next_lists_transitions_in_local_time_and_utc_with_dst_marked() {
    // Friday 23 October 2026 is BST; London falls back on Sunday the 25th.
    let out = run(&["next", "Mon-Fri 08:00-19:00 Europe/London", "--from", "2026-10-23T12:00:00Z", "-n", "3"], None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out),
        "stop  Fri 2026-10-23 19:00 BST DST  (2026-10-23T18:00Z)\n\
         start  Mon 2026-10-26 08:00 GMT  (2026-10-26T08:00Z)\n\
         stop  Mon 2026-10-26 19:00 GMT  (2026-10-26T19:00Z)\n"
    );
}

#[test]
fn week_draws_half_hours_in_the_zone_and_in_utc() {
    let out = run(&["week", "Mon-Fri 08:00-19:00 Europe/London", "--from", "2026-11-23"], None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let printed = text(&out);
    let monday = printed.lines().find(|l| l.starts_with("Mon 2026-11-23")).expect("Monday");
    let cells: String = monday.chars().skip("Mon 2026-11-23  ".chars().count()).collect();
    assert_eq!(cells, format!("{}{}{}", "·".repeat(16), "■".repeat(22), "·".repeat(10)), "{printed}");
    let saturday = printed.lines().find(|l| l.starts_with("Sat 2026-11-28")).expect("Saturday");
    assert!(!saturday.contains('■'), "{printed}");
    assert_eq!(printed.lines().filter(|l| l.starts_with("Mon 2026-11-23")).count(), 2, "both grids: {printed}");
}

fn month(value: &str, month: &str) -> String {
    let out = run(&["usage", value, "--month", month], None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    text(&out)
}

#[test]
fn usage_matches_months_computed_by_hand_across_dst() {
    // January 2027: 21 weekdays (Friday the 1st, then four full weeks) of 8 hours in a 744-hour month.
    let january = month("Mon-Fri 09:00-17:00 Europe/London", "2027-01");
    assert!(january.ends_with("2027-01  running 168.00 h of 744.00 h; saved 576.00 h (77.4%)\n"), "{january}");
    assert!(january.contains("2027-01-02 Sat   0.00 h of 24.00 h"), "{january}");
    // March 2027: London springs forward on Sunday the 28th, a 23-hour day; the month has 743 hours.
    let always = month("Daily 00:00-24:00 Europe/London", "2027-03");
    assert!(always.contains("2027-03-28 Sun  23.00 h of 23.00 h"), "{always}");
    assert!(always.ends_with("2027-03  running 743.00 h of 743.00 h; saved 0.00 h (0.0%)\n"), "{always}");
    // 00:00-02:00 on the 28th: 00:00-01:00 GMT, then the clock jumps to 02:00 BST and the period is over.
    let nights = month("Daily 00:00-02:00 Europe/London", "2027-03");
    assert!(nights.contains("2027-03-28 Sun   1.00 h of 23.00 h"), "{nights}");
    assert!(nights.ends_with("2027-03  running 61.00 h of 743.00 h; saved 682.00 h (91.8%)\n"), "{nights}");
    // October 2027 falls back on Sunday the 31st (25 hours): 00:00-02:00 runs 00:00-01:59 BST and the
    // repeated 01:00-01:59 GMT, three hours; the month has 745.
    let autumn = month("Daily 00:00-02:00 Europe/London", "2027-10");
    assert!(autumn.contains("2027-10-31 Sun   3.00 h of 25.00 h"), "{autumn}");
    assert!(autumn.ends_with("2027-10  running 63.00 h of 745.00 h; saved 682.00 h (91.5%)\n"), "{autumn}");
}

#[test]
fn usage_over_a_year_sums_its_months_and_a_bad_month_is_named() {
    let out = run(&["usage", "Daily 00:00-24:00 UTC", "--year", "2027"], None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out).ends_with("2027     running 8760.00 h of 8760.00 h; saved 0.00 h (0.0%)\n"), "{}", text(&out));
    let bad = run(&["usage", "Daily 00:00-24:00 UTC", "--month", "2027-13"], None);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--month 2027-13: give YYYY-MM"), "{bad:?}");
}
