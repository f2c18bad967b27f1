//! How a plan reads to people (`shipit plan`).

use std::fmt;

use super::{Plan, PlannedStage};

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short: String = self.commit.chars().take(7).collect();
        writeln!(
            f,
            "Plan for {} {} ({}, commit {short}): {} stages, output in {}",
            self.project,
            self.version,
            self.tag,
            self.stages.len(),
            self.dist.display()
        )?;
        for (i, stage) in self.stages.iter().enumerate() {
            let mut notes = Vec::new();
            if stage.kind != "run" {
                notes.push(format!("uses {}", stage.kind));
            }
            if !stage.needs.is_empty() {
                notes.push(format!("needs {}", stage.needs.join(", ")));
            }
            if let Some(t) = stage.timeout {
                notes.push(format!("timeout {}", humantime::format_duration(t)));
            }
            if stage.retries > 0 {
                notes.push(format!("retries {}", stage.retries));
            }
            if let Some(reason) = &stage.skip {
                notes.push(format!("skipped: {reason}"));
            }
            let notes = if notes.is_empty() {
                String::new()
            } else {
                format!("  ({})", notes.join("; "))
            };
            writeln!(f, "{:>3}. {}{notes}", i + 1, stage.name)?;
            if let Some(d) = &stage.description {
                writeln!(f, "       {d}")?;
            }
            for line in batch_summary(stage) {
                writeln!(f, "       {line}")?;
            }
            for unit in &stage.units {
                let indent = match &unit.label {
                    Some(label) => {
                        let cache = if unit.cache.is_some() {
                            "  (cached while inputs are unchanged)"
                        } else {
                            ""
                        };
                        writeln!(f, "       [{label}]{cache}")?;
                        "         "
                    }
                    None => "       ",
                };
                for step in &unit.steps {
                    writeln!(f, "{indent}$ {}", step.command)?;
                }
                for artifact in &unit.artifacts {
                    writeln!(
                        f,
                        "{indent}-> {}/{}  ({})",
                        self.dist.display(),
                        artifact.path,
                        artifact.kind
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// How a stage's cargo builds are grouped into invocations: which targets one cargo builds
/// together, and why the others are built apart. Empty for stages without batches.
pub fn batch_summary(stage: &PlannedStage) -> Vec<String> {
    let mut groups: Vec<(&str, Option<&str>, Vec<&str>)> = Vec::new();
    let mut assembled = Vec::new();
    for unit in &stage.units {
        let Some(batch) = &unit.batch else { continue };
        let label = unit.label.as_deref().unwrap_or(&batch.target);
        if !batch.assemble.is_empty() {
            assembled.push(format!(
                "{label} is assembled from the darwin-x64 and darwin-arm64 builds"
            ));
            continue;
        }
        match groups
            .iter_mut()
            .find(|(group, _, _)| *group == batch.group)
        {
            Some((_, _, labels)) => labels.push(label),
            None => groups.push((&batch.group, batch.apart.as_deref(), vec![label])),
        }
    }
    groups
        .into_iter()
        .map(|(_, apart, labels)| match (apart, labels.len()) {
            (None, 1) => format!("one cargo builds {}", labels[0]),
            (None, _) => format!("one cargo builds {} together", labels.join(", ")),
            (Some(why), _) => format!("{} built apart: {why}", labels.join(", ")),
        })
        .chain(assembled)
        .collect()
}
