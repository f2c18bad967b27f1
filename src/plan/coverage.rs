//! The promise that every released file is checksummed (and so signed, through the signed
//! checksums): a checksum stage must cover the released files of every stage that runs
//! beside it, neither before nor after it in the graph. Such a stage's files would land in
//! the release without a line in `SHA256SUMS`; the order is refused, located, with the fix.

use std::collections::BTreeSet;

use crate::config::{Loaded, Problem};
use crate::manifest::ArtifactKind;
use crate::path;

use super::PlannedStage;

/// One problem per checksum stage and stage beside it with released files.
pub(super) fn uncovered(loaded: &Loaded, planned: &[PlannedStage]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for sums in planned.iter().filter(|p| p.kind == "checksum") {
        let before = ancestors(planned, &sums.name);
        for stage in planned {
            let beside = stage.name != sums.name
                && !before.contains(stage.name.as_str())
                && !ancestors(planned, &stage.name).contains(sums.name.as_str());
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

/// Every stage `name` depends on, directly or not.
fn ancestors<'a>(planned: &'a [PlannedStage], name: &str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut wanted: Vec<&str> = planned
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.needs.iter().map(String::as_str).collect())
        .unwrap_or_default();
    while let Some(next) = wanted.pop() {
        if let Some(p) = planned.iter().find(|p| p.name == next)
            && seen.insert(p.name.as_str())
        {
            wanted.extend(p.needs.iter().map(String::as_str));
        }
    }
    seen
}
