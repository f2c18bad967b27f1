//! Undoing a rollout that cannot go on: the same best-effort steps for a failed health check,
//! a rollback, an error half-way and an interrupt.

use super::*;

impl Deployer<'_> {
    /// Says what an undo could not do, if anything.
    pub(super) fn report_unwind(&self, problems: Vec<String>) {
        if !problems.is_empty() {
            self.tell(
                Level::Warn,
                format!("the undo could not: {}", problems.join("; ")),
            );
        }
    }

    /// The preview emptied, traffic back to `stable` at once, the new containers drained and
    /// removed: every step tried whatever fails before it. Returns what failed.
    pub(super) async fn unwind(
        &self,
        plan: &DeployPlan,
        stable: &[Container],
        fresh: &[Fresh],
    ) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.preview(plan, fresh, false).await {
            problems.push(format!("empty the preview backend ({e})"));
        }
        let backend = &self.plan.backend;
        for old in stable {
            if let Err(e) = self.router.set_weight(backend, &old.name, FULL).await {
                problems.push(format!("route all traffic to {} ({e})", old.name));
            }
        }
        for f in fresh {
            if let Err(e) = self.retire_server(&f.container.name).await {
                problems.push(format!("take {} off the router ({e})", f.container.name));
            }
            if let Err(e) = self.engine.remove(&f.container.name).await {
                problems.push(format!("remove {} ({e})", f.container.name));
            }
        }
        self.say(format!(
            "{} new container{} removed; {}",
            fresh.len(),
            if fresh.len() == 1 { "" } else { "s" },
            if stable.is_empty() {
                "no earlier revision was serving".to_string()
            } else {
                format!("revision {} serves all traffic", stable[0].revision)
            }
        ));
        problems
    }
}
