//! The promise that every released file is checksummed (and so signed, through the signed
//! checksums): a checksum stage must cover the released files of every stage that runs
//! beside it, neither before nor after it in the graph. Such a stage's files would land in
//! the release without a line in `SHA256SUMS`; the order is refused, located, with the fix.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Loaded, Problem};
use crate::manifest::ArtifactKind;
use crate::path;

use super::PlannedStage;

/// One problem per checksum stage and stage beside it with released files.
pub(super) fn uncovered(loaded: &Loaded, planned: &[PlannedStage]) -> Vec<Problem> {
    let mut problems = Vec::new();
    // Each stage's needs, and the stages that need it: one walk each way per checksum stage.
    let needs: BTreeMap<&str, Vec<&str>> = planned
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.needs.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let mut needed_by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (stage, its_needs) in &needs {
        for need in its_needs {
            needed_by.entry(need).or_default().push(stage);
        }
    }
    for sums in planned.iter().filter(|p| p.kind == "checksum") {
        let before = reachable(&needs, &sums.name);
        let after = reachable(&needed_by, &sums.name);
        for stage in planned {
            let name = stage.name.as_str();
            let beside = name != sums.name && !before.contains(name) && !after.contains(name);
            if !beside {
                continue;
            }
            let released: Vec<&str> = stage
                .artifacts()
                .filter(|a| released(&a.path, &a.kind))
                .map(|a| a.path.as_str())
                .collect();
            if released.is_empty() {
                continue;
            }
            let mut needs: Vec<String> = sums.needs.iter().map(|n| format!("\"{n}\"")).collect();
            needs.push(format!("\"{}\"", stage.name));
            problems.push(
                Problem::new(
                    format!(
                        "stage `{}` makes {}, released without a line in checksum stage `{}`'s file (so unsigned too)",
                        stage.name,
                        shown(&released),
                        sums.name
                    ),
                    loaded
                        .span(path!["stages", sums.name.as_str(), "needs"])
                        .or_else(|| loaded.key_span(path!["stages", sums.name.as_str()])),
                )
                .label("does not cover it")
                .help(format!(
                    "let the checksum stage need it: needs = [{}]",
                    needs.join(", ")
                )),
            );
        }
    }
    problems
}

/// Files a release publishes: the top of dist, other than checksums and signatures.
fn released(path: &str, kind: &ArtifactKind) -> bool {
    !path.contains('/') && !matches!(kind, ArtifactKind::Checksum | ArtifactKind::Signature)
}

fn shown(files: &[&str]) -> String {
    match files {
        [one] => format!("`{one}`"),
        [first, second] => format!("`{first}` and `{second}`"),
        [first, rest @ ..] => format!("`{first}` and {} more", rest.len()),
        [] => String::new(),
    }
}

/// Every stage reached from `start` along `edges` (not `start` itself).
fn reachable<'a>(edges: &BTreeMap<&'a str, Vec<&'a str>>, start: &str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut wanted: Vec<&str> = edges.get(start).cloned().unwrap_or_default();
    while let Some(next) = wanted.pop() {
        if seen.insert(next) {
            wanted.extend(edges.get(next).into_iter().flatten().copied());
        }
    }
    seen
}
