//! The savings dashboard in template.yaml (`SchedulerDashboard`), rendered as CloudFormation's `!Sub`
//! would and checked against what the function emits: valid widget JSON on CloudWatch's 24-column
//! grid, metric math whose ids are all defined, and every stackhand metric it names emitted by
//! [`emit`] with exactly those dimensions.

use std::collections::{BTreeSet, HashSet};

use super::*;

const FUNCTION: &str = "stack-InstanceSchedulerFunction-AbC123";

/// The `DashboardBody: !Sub |` block of `SchedulerDashboard`, with its substitutions made.
fn rendered() -> Value {
    let template = include_str!("../../../../template.yaml");
    let mut lines = template.lines().skip_while(|l| l.trim_end() != "  SchedulerDashboard:");
    assert!(lines.next().is_some(), "template.yaml has no SchedulerDashboard resource");
    let mut lines = lines.skip_while(|l| l.trim() != "DashboardBody: !Sub |");
    let key = lines.next().expect("SchedulerDashboard has no `DashboardBody: !Sub |` block");
    let indent = key.len() - key.trim_start().len();
    let block: Vec<&str> =
        lines.take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent).collect();
    let body = block.join("\n");
    let body = body
        .replace("${AWS::Region}", "eu-west-1")
        .replace("${InstanceSchedulerFunction}", FUNCTION)
        .replace("${!", "${");
    assert!(!body.contains("${"), "a substitution the test doesn't know (add it, or escape it as ${{!…}})");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("the dashboard body is not JSON: {e}\n{body}"))
}

/// A namespace, a metric name and its dimensions' names (sorted).
type Metric = (String, String, Vec<String>);

/// Every metric that a run emits.
fn emitted() -> BTreeSet<Metric> {
    let mut target = TargetSummary { account: "111122223333".into(), region: "eu-west-1".into(), ..Default::default() };
    target.fleet = vec![Row { kind: "ec2-instance", type_name: "t3.micro".into(), managed: 2, running: 1, stopped: 1 }];
    let summary = Summary { targets: vec![target], ..Default::default() };
    let mut out = Vec::new();
    emit(&summary, RunFacts { duration: Some(Duration::from_secs(1)), interval_minutes: Some(5) }, &mut out);
    let mut found = BTreeSet::new();
    for line in String::from_utf8(out).unwrap().lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        for directive in line["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for set in directive["Dimensions"].as_array().unwrap() {
                let mut dimensions: Vec<String> =
                    set.as_array().unwrap().iter().map(|d| d.as_str().unwrap().to_owned()).collect();
                dimensions.sort();
                for metric in directive["Metrics"].as_array().unwrap() {
                    let name = metric["Name"].as_str().unwrap().to_owned();
                    found.insert((directive["Namespace"].as_str().unwrap().to_owned(), name, dimensions.clone()));
                }
            }
        }
    }
    found
}

/// An expression with its quoted strings taken out.
fn unquoted(expression: &str) -> String {
    let mut out = String::new();
    let mut quote = None;
    let mut escaped = false;
    for c in expression.chars() {
        match quote {
            Some(q) if !escaped && c == q => quote = None,
            Some(_) => escaped = c == '\\' && !escaped,
            None if c == '\'' || c == '"' => quote = Some(c),
            None => out.push(c),
        }
    }
    out
}

/// The names in `text` (`[A-Za-z_][A-Za-z0-9_]*`), each with whether a `(` follows it (a function).
fn words(text: &str) -> Vec<(String, bool)> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let call = chars[i..].iter().find(|c| !c.is_whitespace()) == Some(&'(');
            words.push((chars[start..i].iter().collect(), call));
        } else {
            i += 1;
        }
    }
    words
}

/// The SEARCH expressions' search strings: `{namespace,dimension,…} MetricName="…" dimension="…"`.
fn searches(expression: &str) -> Vec<String> {
    expression
        .split("SEARCH(")
        .skip(1)
        .map(|rest| {
            let rest = rest.trim_start().strip_prefix('\'').expect("a SEARCH's first argument is quoted");
            rest[..rest.find('\'').expect("an unterminated SEARCH string")].to_owned()
        })
        .collect()
}

/// The (namespace, metric, dimensions) a search string asks for, with the values it pins.
fn searched(search: &str) -> (Metric, Vec<(String, String)>) {
    let open = search.find('{').expect("a search names its schema");
    let close = search.find('}').expect("an unterminated schema");
    let mut schema = search[open + 1..close].split(',').map(|s| s.trim().to_owned());
    let namespace = schema.next().unwrap();
    let mut dimensions: Vec<String> = schema.collect();
    dimensions.sort();
    let mut pinned = Vec::new();
    let mut metric = None;
    for term in search[close + 1..].split_whitespace() {
        let (key, value) = term.split_once('=').unwrap_or_else(|| panic!("a search term is key=\"value\": {term}"));
        let value = value.trim_matches('"').to_owned();
        if key == "MetricName" {
            metric = Some(value);
        } else {
            assert!(dimensions.contains(&key.to_owned()), "{key} is not in the schema of {search}");
            pinned.push((key.to_owned(), value));
        }
    }
    ((namespace, metric.unwrap_or_else(|| panic!("{search} names no MetricName")), dimensions), pinned)
}

#[test]
fn the_dashboard_is_valid_widget_json_on_cloudwatchs_grid() {
    let body = rendered();
    let widgets = body["widgets"].as_array().expect("a widgets array");
    assert!(widgets.len() >= 6, "{widgets:?}");
    let mut cells = HashSet::new();
    for widget in widgets {
        let n = |key: &str| widget[key].as_u64().unwrap_or_else(|| panic!("{key} of {widget}"));
        let (x, y, width, height) = (n("x"), n("y"), n("width"), n("height"));
        assert!(width >= 1 && height >= 1 && x + width <= 24, "off the 24-column grid: {widget}");
        for cell in (x..x + width).flat_map(|cx| (y..y + height).map(move |cy| (cx, cy))) {
            assert!(cells.insert(cell), "widgets overlap at {cell:?}: {widget}");
        }
        let properties = &widget["properties"];
        match widget["type"].as_str() {
            Some("text") => assert!(properties["markdown"].as_str().is_some_and(|m| !m.is_empty())),
            Some("metric") => {
                assert!(properties["title"].is_string(), "{widget}");
                assert_eq!(properties["region"], "eu-west-1", "{widget}");
                let view = properties["view"].as_str().unwrap_or_default();
                assert!(["timeSeries", "singleValue", "bar", "pie", "gauge"].contains(&view), "{widget}");
                if let Some(start) = properties.get("start") {
                    let start = start.as_str().unwrap();
                    assert!(start.starts_with("-P") && start.len() > 3, "a relative start: {start}");
                }
                assert!(!properties["metrics"].as_array().unwrap().is_empty(), "{widget}");
            }
            other => panic!("widget type {other:?}: {widget}"),
        }
    }
}

#[test]
fn every_metric_and_expression_of_the_dashboard_is_one_the_function_emits() {
    let emitted = emitted();
    let functions = ["SEARCH", "SUM", "AVG", "MAX", "MIN", "FILL", "METRICS"];
    let mut used = BTreeSet::new();
    for widget in rendered()["widgets"].as_array().unwrap().iter().filter(|w| w["type"] == "metric") {
        let title = widget["properties"]["title"].as_str().unwrap();
        let mut ids = HashSet::new();
        let mut expressions = Vec::new();
        for entry in widget["properties"]["metrics"].as_array().unwrap() {
            let entry = entry.as_array().unwrap();
            let options = entry.last().and_then(Value::as_object);
            if let Some(id) = options.and_then(|o| o.get("id")).and_then(Value::as_str) {
                assert!(id.starts_with(|c: char| c.is_ascii_lowercase()), "{title}: metric-math id {id}");
                assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{title}: metric-math id {id}");
                assert!(ids.insert(id.to_owned()), "{title}: id {id} used twice");
            }
            if let Some(expression) = options.and_then(|o| o.get("expression")).and_then(Value::as_str) {
                assert_eq!(entry.len(), 1, "{title}: an expression is an entry of its own");
                expressions.push(expression.to_owned());
                continue;
            }
            // [namespace, metric, dimension, value, …, {options}]
            let strings: Vec<&str> = entry.iter().map_while(Value::as_str).collect();
            assert!(strings.len() >= 2 && strings.len() % 2 == 0, "{title}: {entry:?}");
            let mut dimensions: Vec<String> = strings[2..].iter().step_by(2).map(|d| d.to_string()).collect();
            dimensions.sort();
            for value in strings[3..].iter().step_by(2) {
                assert_eq!(*value, FUNCTION, "{title}: a dimension value other than the function's");
            }
            let stat = options.and_then(|o| o.get("stat")).and_then(Value::as_str).unwrap_or("Average");
            assert!(["Sum", "Average", "Maximum", "Minimum", "SampleCount"].contains(&stat), "{title}: {stat}");
            let metric = (strings[0].to_owned(), strings[1].to_owned(), dimensions);
            if metric.0 == NAMESPACE {
                assert!(emitted.contains(&metric), "{title}: {metric:?} is not emitted by the function");
                used.insert(metric.1.clone());
            } else {
                assert_eq!((metric.0.as_str(), metric.2.as_slice()), ("AWS/Lambda", &["FunctionName".to_owned()][..]));
            }
        }
        for expression in &expressions {
            for (word, call) in words(&unquoted(expression)) {
                if call {
                    assert!(functions.contains(&word.as_str()), "{title}: function {word} in {expression}");
                } else {
                    assert!(ids.contains(&word), "{title}: {word} is not an id of this widget: {expression}");
                }
            }
            let found = searches(expression);
            assert!(!found.is_empty() || expression.contains(|c: char| c.is_ascii_lowercase()), "{expression}");
            for search in found {
                let (metric, pinned) = searched(&search);
                assert!(emitted.contains(&metric), "{title}: {metric:?} is not emitted by the function");
                assert!(
                    pinned.contains(&("function".into(), FUNCTION.into())),
                    "{title}: {search} not pinned to the function"
                );
                used.insert(metric.1.clone());
            }
        }
    }
    // The four views: hours saved, running over time, failures and deferrals, run duration.
    for name in ["StoppedMinutes", "Running", "Managed", "Stopped", "Failed", "Deferred", "RunDuration"] {
        assert!(used.contains(name), "the dashboard shows no {name}");
    }
}

#[test]
fn the_checks_catch_an_undefined_id_and_an_unknown_metric() {
    let words = words(&unquoted("SUM(SEARCH('{stackhand,function,kind} MetricName=\"Running\"', 'Sum')) / rnus"));
    assert_eq!(words, [("SUM".into(), true), ("SEARCH".into(), true), ("rnus".into(), false)]);
    let ((_, metric, dimensions), _) = searched("{stackhand,function,kind} MetricName=\"Runing\" function=\"f\"");
    assert_eq!(dimensions, ["function", "kind"]);
    assert!(!emitted().iter().any(|(_, m, _)| *m == metric));
    assert!(emitted().contains(&("stackhand".into(), "Running".into(), vec!["function".into(), "kind".into()])));
    assert!(!emitted().contains(&("stackhand".into(), "Running".into(), vec!["function".into(), "target".into()])));
}
