//! The module structure ARCHITECTURE.md describes, held against the code: the imports
//! between top-level modules of `src/` form no cycle, and the layers' rules hold (config is
//! a leaf, checks never reach up into the daemon).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/checks/mx.rs` → `checks`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// The top-level modules a file names through `crate::…`, comments left out.
fn imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

/// Module → the modules it imports, with one file per edge as the witness.
fn graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in files {
        let from = module_of(&src, &file);
        if from == "lib" || from == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let witness = file.strip_prefix(&src).unwrap().display().to_string();
        let edges = graph.entry(from.clone()).or_default();
        for to in imports(&text) {
            if to != from {
                edges.entry(to).or_insert_with(|| witness.clone());
            }
        }
    }
    graph
}

/// A cycle of `graph`, if any (depth-first search).
fn find_cycle(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// How a cycle reads, with the file that makes each step.
fn describe(cycle: &[String], graph: &BTreeMap<String, BTreeMap<String, String>>) -> String {
    cycle
        .windows(2)
        .map(|pair| {
            format!(
                "{} -> {} (in src/{})",
                pair[0], pair[1], graph[&pair[0]][&pair[1]]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let graph = graph();
    assert!(graph.len() >= 10, "too few modules read: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle between top-level modules:\n{}",
            describe(&cycle, &graph)
        );
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        graph
            .entry(from.to_owned())
            .or_default()
            .insert(to.to_owned(), format!("{from}.rs"));
    }
    let cycle = find_cycle(&graph).expect("a -> b -> c -> a");
    assert_eq!(cycle, ["a", "b", "c", "a"]);
    graph.get_mut("c").unwrap().remove("a");
    assert_eq!(find_cycle(&graph), None);
    let text =
        "use crate::checks::Registry; // crate::monitor in a comment\nlet x = crate::dns::x;";
    assert_eq!(
        imports(text),
        BTreeSet::from(["checks".into(), "dns".into()])
    );
}

#[test]
fn layers_point_one_way() {
    let graph = graph();
    let forbidden = [
        (
            "config",
            &[
                "checks", "alert", "state", "monitor", "metrics", "http", "app", "i18n",
            ][..],
        ),
        (
            "i18n",
            &["checks", "monitor", "alert", "http", "state", "app"][..],
        ),
        (
            "checks",
            &["monitor", "alert", "http", "metrics", "state", "app"][..],
        ),
        (
            "dns",
            &[
                "checks", "config", "monitor", "alert", "http", "metrics", "state",
            ][..],
        ),
        (
            "finding",
            &[
                "checks", "config", "dns", "monitor", "alert", "state", "i18n",
            ][..],
        ),
        (
            "kind_map",
            &[
                "checks", "config", "dns", "monitor", "alert", "state", "metrics", "http",
            ][..],
        ),
        ("state", &["monitor", "alert", "http", "checks"][..]),
    ];
    let mut broken = Vec::new();
    for (from, never) in forbidden {
        for (to, witness) in graph.get(from).into_iter().flatten() {
            if never.contains(&to.as_str()) {
                broken.push(format!("{from} -> {to} (in src/{witness})"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports against the layering:\n{}",
        broken.join("\n")
    );
}
