//! The signing keys a plan uses, loaded and decrypted before any work starts, so a missing key
//! or a wrong password stops the run before anything is built.

use crate::plan::{Plan, StepCommand};
use crate::tasks::{KeyError, Task, TaskContext};

/// A stage's key that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("stage `{stage}`: {source}")]
pub struct StageKeyError {
    /// The stage.
    pub stage: String,
    /// Why.
    #[source]
    pub source: Box<KeyError>,
}

/// Loads every minisign and OpenPGP key the plan's stages sign with into `tasks`.
pub fn signing_keys(plan: &Plan, tasks: &mut TaskContext) -> Result<(), StageKeyError> {
    for stage in plan.stages.iter().filter(|s| s.skip.is_none()) {
        let failed = |source: KeyError| StageKeyError {
            stage: stage.name.clone(),
            source: Box::new(source),
        };
        for step in stage.units.iter().flat_map(|u| u.steps.iter()) {
            match &step.command {
                StepCommand::Task(task) if task.minisign_key().is_some() => {
                    if let Some((stage, source)) = task.minisign_key() {
                        tasks
                            .keys
                            .insert(stage.to_owned(), source.load().map_err(failed)?);
                    }
                }
                StepCommand::Task(Task::Keyless(_))
                    if !crate::sigstore::sign::token_available() =>
                {
                    return Err(failed(KeyError::NoOidcToken));
                }
                StepCommand::Task(Task::Package(task)) => {
                    if let (Some(source), Some(signer)) = (&task.key, &task.spec.signed_by)
                        && !tasks.pgp_keys.contains_key(signer)
                    {
                        let key = source.load_pgp().map_err(failed)?;
                        tasks.pgp_keys.insert(signer.clone(), key);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}
