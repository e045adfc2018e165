//! A step's attempts: `retry {count, until}` around them, and one attempt
//! itself: the step's operations in order under its `timeout`, its group
//! verdict, `negative`, and how an interruption or a hand-off to the next
//! container of a pod ends it.

use super::*;

impl StepRunner {
    /// Runs a step, again while its `retry` says so; reports its final status.
    pub(super) async fn run_attempts(&mut self, step: &PlanStep) -> StepStatus {
        // A group an earlier container of the pod started goes on here.
        let continued = self
            .relay
            .as_ref()
            .is_some_and(|relay| relay.started(&step.id));
        if step.paused
            && !continued
            && let Some(status) = self.wait_while_paused(step).await
        {
            return status;
        }
        let policy = step.retry.as_ref().map(|retry| {
            let env = self.env_of(self.env_vars(step));
            env.checked(RetryPolicy::from_plan(retry, &env))
        });
        let policy = match policy {
            None => None,
            Some(Ok(policy)) => Some(policy),
            Some(Err(message)) => {
                let detail = StepDetail {
                    message: Some(message),
                    attempt: 1,
                    ..StepDetail::default()
                };
                self.emit_step(step, StepStatus::Failed, detail).await;
                return StepStatus::Failed;
            }
        };
        let mut number = 1;
        loop {
            let running = StepDetail {
                attempt: number,
                ..StepDetail::default()
            };
            if !(continued && number == 1) {
                self.emit_step(step, StepStatus::Running, running).await;
            }
            let end = self.attempt(step).await;
            if self.handing_off() {
                return StepStatus::Skipped;
            }
            let mut detail = StepDetail {
                exit_code: end.exit_code,
                attempt: number,
                message: end.message,
            };
            let Some(policy) = &policy else {
                self.emit_step(step, end.status, detail).await;
                return end.status;
            };
            let attempt = Attempt {
                number,
                status: end.status,
                stopped_by_parent: end.status == StepStatus::Timeout && !end.own_timeout,
            };
            let decision = {
                let env = self.env_of(self.env_vars(step));
                env.checked(
                    self.status
                        .retry_decision_in(&step.id, policy, &attempt, &env),
                )
            };
            match decision {
                Ok(RetryDecision::Retry { next_attempt }) => {
                    let note = format!(
                        "attempt {number} ended {}; retrying ({next_attempt} of {})\n",
                        end.status,
                        policy.count + 1
                    );
                    self.log(&step.id, note).await;
                    number = next_attempt;
                }
                Ok(RetryDecision::Stop(_)) => {
                    self.emit_step(step, end.status, detail).await;
                    return end.status;
                }
                Err(message) => {
                    detail.message = Some(message);
                    self.emit_step(step, end.status, detail).await;
                    return end.status;
                }
            }
        }
    }

    /// One attempt: the step's operations in order, under its `timeout`.
    async fn attempt(&mut self, step: &PlanStep) -> AttemptEnd {
        let own_deadline = match &step.timeout {
            None => None,
            Some(text) => match FormatDuration(text.clone()).parse() {
                Ok(duration) => Some(Instant::now() + duration),
                Err(err) => {
                    return AttemptEnd {
                        status: StepStatus::Failed,
                        own_timeout: false,
                        exit_code: None,
                        message: Some(format!("invalid timeout `{text}`: {err}")),
                    };
                }
            },
        };
        if let Some(deadline) = own_deadline {
            self.deadlines.push(deadline);
        }
        let has_children = step
            .operations
            .iter()
            .any(|op| matches!(op, Operation::Setup { .. } | Operation::Steps { .. }));
        if has_children {
            self.status.enter();
        }
        let mut own = OperationEnd::passed();
        for (index, operation) in step.operations.iter().enumerate() {
            // After a failure only artifacts are still collected (their
            // condition, `always` by default, decides).
            if own.status != StepStatus::Passed && !matches!(operation, Operation::Artifacts { .. })
            {
                continue;
            }
            if self
                .relay
                .as_ref()
                .is_some_and(|relay| relay.operation_done(&step.id, index))
            {
                continue;
            }
            let end = self.operation(step, operation).await;
            if self.handing_off() {
                break;
            }
            if let Some(relay) = &self.relay
                && !matches!(operation, Operation::Setup { .. } | Operation::Steps { .. })
            {
                relay.mark_operation_done(&step.id, index);
            }
            if end.exit_code.is_some() {
                own.exit_code = end.exit_code;
            }
            if end.status != StepStatus::Passed && own.status == StepStatus::Passed {
                own.status = end.status;
                own.message = end.message;
            }
        }
        // Services live as long as the attempt of the step that started them.
        self.stop_step_services(&step.id).await;
        let group = if has_children {
            self.status.leave(false)
        } else {
            None
        };
        if own_deadline.is_some() {
            self.deadlines.pop();
        }
        let mut status = match (own.status, group) {
            (StepStatus::Passed, Some(group)) => group,
            (own, _) => own,
        };
        let own_timeout = own_deadline.is_some_and(|deadline| deadline <= Instant::now());
        if own_timeout && !status.is_success() {
            status = StepStatus::Timeout;
            own.message.get_or_insert_with(|| {
                format!("timed out after {}", step.timeout.as_deref().unwrap_or("?"))
            });
        }
        let interruption = *self.interrupt.borrow();
        if let Some(interruption) = interruption
            && (!status.is_success() || self.stopped_steps)
            && status != StepStatus::Timeout
        {
            status = interruption.step_status(StepStatus::Running);
        }
        if step.negative {
            status = match status {
                StepStatus::Passed => StepStatus::Failed,
                StepStatus::Failed => StepStatus::Passed,
                other => other,
            };
        }
        AttemptEnd {
            status,
            own_timeout,
            exit_code: own.exit_code,
            message: own.message,
        }
    }
}
