//! One unit of a stage: the cache check, its attempts with retries, its log and the artifacts
//! it leaves.

use super::batch::Member;
use super::log::Log;
use super::process::{Failure, backoff, run_attempt};
use super::*;

pub(super) async fn run_unit(
    stage: Arc<PlannedStage>,
    index: usize,
    context: Arc<RunContext>,
    cancel: CancellationToken,
    digests: Digests,
    _slot: Option<OwnedSemaphorePermit>,
    member: Option<Member>,
) -> (usize, UnitReport) {
    // A member that returns before joining its group (cached, cancelled) declines on drop.
    let mut member = member;
    let started = Instant::now();
    let unit = &stage.units[index];
    let lane = Lane::of(&stage, unit);
    let log_name = match &unit.label {
        // A label may be a path (`completions/demo.bash`): its log stays one file in logs/.
        Some(label) => format!("{}-{}.log", stage.name, label.replace(['/', '\\'], "-")),
        None => format!("{}.log", stage.name),
    };
    let log_path = context.logs.join(log_name);
    let mut report = UnitReport::ended(unit.label.clone(), StageStatus::Succeeded);
    report.outcome.log = Some(log_path.clone());
    // A unit that may be cached keeps its log: a cached run appends a line to the log of the
    // build that made the output, and a real build starts it over.
    let log = match Log::open(&log_path, context.masker.clone(), unit.cache.is_some()) {
        Ok(log) => Arc::new(log),
        Err(e) => {
            report.outcome.status = StageStatus::Failed {
                reason: format!("cannot create {}: {e}", log_path.display()),
            };
            return (index, report);
        }
    };
    if cancel.is_cancelled() {
        report.outcome.status = StageStatus::Cancelled;
        return (index, report);
    }

    let mut building_because: Option<String> = None;
    let fingerprint = match &unit.cache {
        Some(key) => {
            let digest = {
                let mut digests = digests.lock().await;
                match digests.get(&key.inputs) {
                    Some(known) => known.clone(),
                    None => {
                        let (inputs, exclude) = (key.inputs.clone(), key.exclude.clone());
                        let digest = tokio::task::spawn_blocking(move || {
                            cache::digest_inputs(&inputs, &exclude).map_err(Arc::new)
                        })
                        .await
                        .unwrap_or_else(|e| Err(Arc::new(std::io::Error::other(e))));
                        digests.insert(key.inputs.clone(), digest.clone());
                        digest
                    }
                }
            };
            match digest {
                Ok(digest) => Some(cache::fingerprint(key, &stage.env, unit, &digest)),
                Err(e) => {
                    building_because = Some(format!("cannot hash the inputs, building: {e}"));
                    None
                }
            }
        }
        None => None,
    };
    if let (Some(key), Some(fingerprint)) = (&unit.cache, &fingerprint)
        && !context.no_cache
    {
        let outputs: Vec<PathBuf> = unit
            .artifacts
            .iter()
            .filter_map(|a| a.source.clone())
            .collect();
        let stale = match Stamp::read(&key.stamp) {
            Some(stamp) => stamp.staleness(fingerprint, &outputs),
            None => Some("it was never built here before".into()),
        };
        if let Some(why) = &stale {
            building_because = Some(format!("building: {why}"));
        }
        if stale.is_none() {
            log.line(&format!(
                "# shipit: {}: inputs unchanged; reusing the output of the build logged above",
                humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            ));
            match collect_artifacts(unit, &context.dist) {
                Ok(artifacts) => {
                    report.outcome.artifacts = artifacts;
                    report.outcome.status = StageStatus::Cached;
                    report.outcome.elapsed = started.elapsed();
                    return (index, report);
                }
                Err(reason) => {
                    building_because = Some(format!(
                        "cannot reuse the cached output ({}); building",
                        crate::error::chain(&reason)
                    ));
                }
            }
        }
    }

    if unit.cache.is_some() {
        log.restart();
    }
    if let Some(reason) = building_because {
        log.line(&format!("# shipit: {reason}"));
        context.reporter.report(&Event::Message {
            level: crate::events::Level::Debug,
            text: &format!("{lane}: {reason}"),
        });
    }
    let attempts = stage.retries.saturating_add(1);
    for attempt in 1..=attempts {
        report.outcome.attempts = attempt;
        context.reporter.report(&Event::Started {
            lane,
            attempt,
            attempts,
        });
        log.line(&format!(
            "# shipit: {lane}, attempt {attempt} of {attempts}",
        ));
        let attempted = match member.take() {
            Some(member) => member.join(index, log.clone()).await,
            None => {
                // Other cargo invocations in the same target folder wait here, not on
                // cargo's lock.
                let lock = unit.batch.as_ref().map(|b| context.folder_lock(&b.lock));
                let _held = match &lock {
                    Some(lock) => Some(lock.lock().await),
                    None => None,
                };
                run_attempt(&stage, unit, lane, &context, &log, &cancel).await
            }
        };
        let failure = match attempted {
            Ok(()) => match collect_artifacts(unit, &context.dist) {
                Ok(artifacts) => {
                    report.outcome.artifacts = artifacts;
                    report.outcome.status = StageStatus::Succeeded;
                    break;
                }
                Err(reason) => Failure::Failed(crate::error::chain(&reason)),
            },
            Err(failure) => failure,
        };
        log.line(&format!("# shipit: {}", failure.describe()));
        report.outcome.status = match failure {
            Failure::Cancelled => StageStatus::Cancelled,
            Failure::TimedOut(after) => StageStatus::TimedOut {
                after_ms: after.as_millis() as u64,
            },
            Failure::Failed(reason) => StageStatus::Failed { reason },
        };
        if report.outcome.status == StageStatus::Cancelled {
            break;
        }
        if attempt < attempts {
            let delay = backoff(stage.backoff, attempt);
            let reason = match &report.outcome.status {
                StageStatus::TimedOut { .. } => "timed out".to_string(),
                StageStatus::Failed { reason } => reason.clone(),
                other => other.word().to_string(),
            };
            context.reporter.report(&Event::Retrying {
                lane,
                attempt: attempt + 1,
                delay,
                reason: &reason,
            });
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled() => {
                    report.outcome.status = StageStatus::Cancelled;
                    break;
                }
            }
        }
    }
    if report.outcome.status == StageStatus::Succeeded
        && let (Some(key), Some(fingerprint)) = (&unit.cache, fingerprint)
    {
        let outputs: Vec<PathBuf> = unit
            .artifacts
            .iter()
            .filter_map(|a| a.source.clone())
            .collect();
        if let Err(e) = Stamp::record(&fingerprint, &outputs).and_then(|s| s.write(&key.stamp)) {
            log.line(&format!(
                "# shipit: cannot record the cache stamp {}: {e}",
                key.stamp.display()
            ));
        }
    }
    if report.outcome.status.is_failure() {
        report.outcome.tail = log.tail();
        let target = unit
            .batch
            .as_ref()
            .map(|b| b.target.as_str())
            .or(unit.label.as_deref());
        report.outcome.hint =
            super::hints::for_failure(target, &report.outcome.tail).map(str::to_owned);
    }
    report.outcome.elapsed = started.elapsed();
    (index, report)
}

/// For `--dry-run`: whether a unit with a cache would be reused, or why it would run.
pub(super) fn would_build(stage: &PlannedStage, unit: &Unit, no_cache: bool) -> Option<String> {
    let key = unit.cache.as_ref()?;
    if no_cache {
        return Some("would build (--no-cache)".into());
    }
    let Some(stamp) = Stamp::read(&key.stamp) else {
        return Some("would build: never built here before".into());
    };
    let digest = match cache::digest_inputs(&key.inputs, &key.exclude) {
        Ok(digest) => digest,
        Err(e) => return Some(format!("would build: cannot hash its inputs ({e})")),
    };
    let fingerprint = cache::fingerprint(key, &stage.env, unit, &digest);
    let outputs: Vec<PathBuf> = unit
        .artifacts
        .iter()
        .filter_map(|a| a.source.clone())
        .collect();
    Some(match stamp.staleness(&fingerprint, &outputs) {
        None => "cached: inputs unchanged, output intact".into(),
        Some(why) => format!("would build: {why}"),
    })
}

/// Why a unit's output could not be collected.
#[derive(Debug, thiserror::Error)]
pub(super) enum CollectError {
    /// The folder of an artifact could not be made.
    #[error("cannot create {}", .0.display())]
    Folder(PathBuf, #[source] std::io::Error),
    /// The build did not leave the file it should have.
    #[error("expected artifact {} was not produced", .0.display())]
    NotProduced(PathBuf, #[source] std::io::Error),
    /// A binary is not for its target, or cannot be made reproducible.
    #[error(transparent)]
    Binary(#[from] binfmt::BinaryError),
    /// The artifact could not be hashed.
    #[error("cannot read artifact {}", .0.display())]
    Read(PathBuf, #[source] std::io::Error),
}

/// Copies built files into the dist folder, checks that binaries are for their target, and
/// records size and hash.
pub(super) fn collect_artifacts(unit: &Unit, dist: &Path) -> Result<Vec<Artifact>, CollectError> {
    let mut artifacts = Vec::with_capacity(unit.artifacts.len());
    for planned in &unit.artifacts {
        let dest = dist.join(&planned.path);
        if let Some(source) = &planned.source {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| CollectError::Folder(parent.to_path_buf(), e))?;
            }
            std::fs::copy(source, &dest)
                .map_err(|e| CollectError::NotProduced(source.clone(), e))?;
        }
        if let Some(how) = &planned.normalize {
            binfmt::normalize(&dest, how)?;
        }
        if let (ArtifactKind::Binary, Some(target)) = (planned.kind, &planned.target)
            && let Err(mismatch) = binfmt::verify(&dest, target)
        {
            // A binary for the wrong platform must not stay where publishers look.
            let _ = std::fs::remove_file(&dest);
            return Err(mismatch.into());
        }
        let (size, sha256) = hash_file(&dest).map_err(|e| CollectError::Read(dest.clone(), e))?;
        artifacts.push(planned.record(size, sha256));
    }
    Ok(artifacts)
}
