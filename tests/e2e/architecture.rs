//! The code's shape, checked: imports between top-level modules of `src/` point one way (no
//! cycle), as ARCHITECTURE.md says, and no source file outgrows a reading.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::repo_root;

/// Top-level module -> the top-level modules it names through `crate::` paths.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(src).unwrap();
        let first = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let uses = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `use crate::{a, b}` names several.
            if name.is_empty() {
                let group = &text[at + "crate::".len()..];
                if let Some(inner) = group.strip_prefix('{').and_then(|g| g.split('}').next()) {
                    for part in inner.split(',') {
                        let part = part.trim().split("::").next().unwrap_or("").trim();
                        if !part.is_empty() && part != module {
                            uses.insert(part.to_string());
                        }
                    }
                }
            } else if name != module {
                uses.insert(name);
            }
        }
    }
    graph
}

/// Groups of two or more modules that reach each other (Tarjan's strongly connected
/// components, iteratively).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let names: Vec<&String> = graph.keys().collect();
    let index_of: BTreeMap<&String, usize> =
        names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let edges: Vec<Vec<usize>> = names
        .iter()
        .map(|n| {
            graph[*n]
                .iter()
                .filter_map(|m| index_of.get(m).copied())
                .collect()
        })
        .collect();
    let n = names.len();
    let (mut index, mut low, mut on_stack) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut stack, mut found, mut counter) = (Vec::new(), Vec::new(), 0);
    for start in 0..n {
        if index[start] != usize::MAX {
            continue;
        }
        let mut work = vec![(start, 0usize)];
        while let Some((v, next)) = work.pop() {
            if next == 0 {
                index[v] = counter;
                low[v] = counter;
                counter += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(next) {
                work.push((v, next + 1));
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(names[w].clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    found.push(component);
                }
            }
        }
    }
    found
}

#[test]
fn no_import_cycle_spans_two_top_level_modules() {
    let graph = module_graph(&repo_root().join("src"));
    assert!(graph.len() > 20, "{graph:?}");
    assert!(
        graph["plan"].contains("config"),
        "the reader misses imports"
    );
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "import cycles between top-level modules: {found:?}"
    );
}

/// The check finds what it is for.
/// The layers ARCHITECTURE.md names: the executor, publishers and deploys sit side by side and
/// never import each other; none of them, nor anything below them, imports the screen (`ui`) or
/// the application (`commands`, `cli`). They speak through `events`.
#[test]
fn work_layers_import_neither_each_other_nor_the_screen() {
    let graph = module_graph(&repo_root().join("src"));
    let above = ["ui", "commands", "cli"];
    let siblings = ["executor", "publish", "deploy"];
    let mut wrong = Vec::new();
    for (module, uses) in &graph {
        if above.contains(&module.as_str()) {
            continue;
        }
        for used in uses {
            let upward = above.contains(&used.as_str());
            let sideways = siblings.contains(&module.as_str()) && siblings.contains(&used.as_str());
            if upward || sideways {
                wrong.push(format!("{module} -> {used}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:?}");
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let mut graph = BTreeMap::new();
    let edge = |from: &str, to: &[&str]| {
        (
            from.to_string(),
            to.iter()
                .map(|t| t.to_string())
                .collect::<BTreeSet<String>>(),
        )
    };
    graph.extend([
        edge("a", &["b"]),
        edge("b", &["c"]),
        edge("c", &["a"]),
        edge("d", &["a"]),
    ]);
    assert_eq!(
        cycles(&graph),
        vec![vec!["a".to_string(), "b".into(), "c".into()]]
    );
    graph.insert("c".into(), BTreeSet::new());
    assert!(cycles(&graph).is_empty());
}

/// Files people can read whole: none in `src/` over 700 lines.
#[test]
fn no_source_file_is_over_700_lines() {
    let long: Vec<String> = walkdir::WalkDir::new(repo_root().join("src"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .filter_map(|e| {
            let lines = std::fs::read_to_string(e.path()).ok()?.lines().count();
            (lines > 700).then(|| format!("{} ({lines} lines)", e.path().display()))
        })
        .collect();
    assert!(long.is_empty(), "split these: {long:?}");
}

/// Commands stay thin (parse, call the library, map the exit code): each under 200 lines.
#[test]
fn every_command_file_is_under_200_lines() {
    let long: Vec<String> = std::fs::read_dir(repo_root().join("src/commands"))
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let lines = std::fs::read_to_string(e.path()).ok()?.lines().count();
            (lines >= 200).then(|| format!("{} ({lines} lines)", e.path().display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "move their work into the library: {long:?}"
    );
}
