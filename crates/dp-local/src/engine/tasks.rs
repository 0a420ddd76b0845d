//! Tasks and leases: attempts, the worker-group queues, hand-out under a fresh task id, the acknowledgement and
//! progress leases and their timers, retries, and the runner's reports.
//!
//! Every hand-out happens under the engine's lock, which is what makes it unique.

use super::schedules::period_field;
use super::*;

impl State {
    /// Gives an instance a new attempt, ready after `delay` (service time).
    pub(super) fn start_attempt(&mut self, pid: &str, iid: &str, delay: Duration, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let inst = &mut p.instances[iid];
        if inst.attempts.is_empty() && resources::role_of(inst) == Role::Precondition {
            // preconditionTimeout counts from the first check (service time).
            let timeout = period_field(
                &inst.definition,
                &inst.component,
                "preconditionTimeout",
                Duration::ZERO,
            );
            if !timeout.is_zero() {
                inst.give_up_at = Some(now.instant + now.clock.real(timeout));
            }
            inst.actual_start.get_or_insert(now.epoch);
        }
        let number = inst.attempts.len() as u32 + 1;
        let aid = format!("{iid}_Attempt={number}");
        inst.attempts.push(aid.clone());
        // A resource's attempt is a launch of its runner; `enqueue` hands it to the launch queue.
        let status = if resources::role_of(inst) == Role::Resource {
            inst.actual_end = None;
            Status::Creating
        } else {
            Status::WaitingForRunner
        };
        inst.status = status;
        self.dirty.instance(pid, iid);
        self.dirty.attempt(pid, &aid);
        p.attempts.insert(
            aid.clone(),
            Attempt {
                instance: iid.to_string(),
                number,
                status,
                actual_start: None,
                actual_end: None,
                hostname: None,
                task_id: None,
                lease: Lease::Free,
                timer_at: None,
                not_before: (!delay.is_zero()).then(|| now.instant + now.clock.real(delay)),
                queued: false,
                ended_by_runner: false,
                error: None,
                reported: Vec::new(),
                last_report: None,
                run_deadline: None,
                resource_id: None,
            },
        );
        if delay.is_zero() {
            self.enqueue(pid, &aid, now);
        } else {
            let at = now.instant + now.clock.real(delay);
            self.add_timer(
                at,
                Timer::Retry {
                    pipeline: pid.to_string(),
                    attempt: aid,
                },
            );
        }
    }

    /// Puts an attempt in its worker group's queue if it may be handed out and is not queued already.
    pub(super) fn enqueue(&mut self, pid: &str, aid: &str, now: Now) {
        let creating = self
            .pipelines
            .get(pid)
            .and_then(|p| p.attempts.get(aid))
            .is_some_and(|a| a.status == Status::Creating);
        if creating {
            // A resource attempt: its "queue" is the launcher's.
            self.queue_launch(pid, aid, now);
            return;
        }
        let Some(iid) = self.enqueue_only(pid, aid) else {
            return;
        };
        if let Err(why) = self.demand_runner(pid, &iid, now) {
            self.no_runner_ever(pid, aid, &why, now);
        }
    }

    /// Puts an attempt in its worker group's queue, without seeing to a runner for it; returns its instance when
    /// it was queued.
    pub(super) fn enqueue_only(&mut self, pid: &str, aid: &str) -> Option<String> {
        let p = self.pipelines.get_mut(pid)?;
        if p.deleted || p.state != PipelineState::Scheduled {
            return None;
        }
        let attempt = p.attempts.get_mut(aid)?;
        let inst = &p.instances[attempt.instance.as_str()];
        if attempt.queued
            || attempt.not_before.is_some_and(|t| Instant::now() < t)
            || attempt.status != Status::WaitingForRunner
            || attempt.lease != Lease::Free
            || inst.paused
        {
            return None;
        }
        let group = inst.worker_group.clone()?;
        attempt.queued = true;
        let iid = attempt.instance.clone();
        self.queues
            .entry(group.clone())
            .or_default()
            .push_back((pid.to_string(), aid.to_string()));
        self.woken.insert(group);
        Some(iid)
    }

    /// The attempt can never be handed out (its resource ended in failure): it fails, and so does its instance.
    fn no_runner_ever(&mut self, pid: &str, aid: &str, why: &str, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let attempt = &mut p.attempts[aid];
        let error = ErrorInfo {
            id: Some("ResourceFailed".into()),
            message: Some(format!("This work cannot run: {why}")),
            stack_trace: None,
        };
        attempt.status = Status::Failed;
        attempt.error = Some(error.clone());
        let iid = attempt.instance.clone();
        let inst = &mut p.instances[iid.as_str()];
        inst.status = Status::Failed;
        inst.actual_end = Some(now.epoch);
        inst.error = Some(error);
        self.dirty.attempt(pid, aid);
        self.dirty.instance(pid, &iid);
        self.ended(pid, &iid, now);
    }

    /// Queues every waiting attempt of a pipeline (after activation or resume).
    pub(super) fn requeue_pipeline(&mut self, pid: &str, now: Now) {
        let Some(p) = self.pipelines.get(pid) else {
            return;
        };
        let waiting: Vec<String> = p
            .instances
            .values()
            .filter(|i| i.status == Status::WaitingForRunner)
            .filter_map(|i| i.attempts.last().cloned())
            .collect();
        for aid in waiting {
            self.enqueue(pid, &aid, now);
        }
    }

    /// Hands out the first ready task of `group`, if any.
    pub(super) fn take_task(
        &mut self,
        group: &str,
        hostname: Option<&str>,
        now: Now,
    ) -> Option<TaskObject> {
        loop {
            let (pid, aid) = self.queues.get_mut(group)?.pop_front()?;
            let Some(p) = self.pipelines.get_mut(&pid) else {
                continue;
            };
            let Some(attempt) = p.attempts.get_mut(&aid) else {
                continue;
            };
            attempt.queued = false;
            let inst = &p.instances[attempt.instance.as_str()];
            if p.deleted
                || p.state != PipelineState::Scheduled
                || inst.paused
                || attempt.status != Status::WaitingForRunner
                || attempt.lease != Lease::Free
            {
                continue;
            }
            let attempt_timeout = inst
                .definition
                .string(&inst.component, "attemptTimeout")
                .and_then(|v| Period::parse(&v))
                .map(|p| Duration::from_secs(p.min_seconds().clamp(0, i64::MAX) as u64));
            let task_id = loop {
                let id = random_id(40, TOKEN_CHARS);
                if !self.tasks.contains_key(&id) {
                    break id;
                }
            };
            let deadline = now.instant + now.clock.real(clock::ACKNOWLEDGE_WINDOW);
            attempt.task_id = Some(task_id.clone());
            attempt.lease = Lease::Acknowledge(deadline);
            attempt.status = Status::Running;
            attempt.actual_start = Some(now.epoch);
            attempt.hostname = hostname.map(str::to_string);
            let arm = attempt.timer_at.is_none_or(|t| deadline < t);
            if arm {
                attempt.timer_at = Some(deadline);
            }
            let run_deadline = match (attempt_timeout, attempt.run_deadline) {
                (Some(timeout), None) => {
                    let at = now.instant + now.clock.real(timeout);
                    attempt.run_deadline = Some(at);
                    Some(at)
                }
                _ => None,
            };
            let iid = attempt.instance.clone();
            let inst = &mut p.instances[iid.as_str()];
            inst.status = Status::Running;
            inst.actual_start.get_or_insert(now.epoch);
            let task = task_object(p, &aid, &task_id);
            self.dirty.task(&task_id, &pid, &aid);
            self.dirty.attempt(&pid, &aid);
            self.dirty.instance(&pid, &iid);
            self.tasks.insert(task_id, (pid.clone(), aid.clone()));
            if let Some(at) = run_deadline {
                self.add_timer(
                    at,
                    Timer::AttemptTimeout {
                        pipeline: pid.clone(),
                        attempt: aid.clone(),
                    },
                );
            }
            if arm {
                self.add_timer(
                    deadline,
                    Timer::Lease {
                        pipeline: pid,
                        attempt: aid,
                    },
                );
            }
            return Some(task);
        }
    }

    pub(super) fn fire_timers(&mut self, now: Now) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now.instant {
                break;
            }
            let ((at, _), timer) = entry.remove_entry();
            match timer {
                Timer::Lease { pipeline, attempt } => {
                    self.lease_check(&pipeline, &attempt, at, now)
                }
                Timer::Retry { pipeline, attempt } => self.enqueue(&pipeline, &attempt, now),
                Timer::Terminate { pipeline, attempt } => {
                    self.resource_terminate_after(&pipeline, &attempt, at, now)
                }
                Timer::Late { pipeline, instance } => self.late(&pipeline, &instance, at, now),
                Timer::AttemptTimeout { pipeline, attempt } => {
                    self.attempt_timed_out(&pipeline, &attempt, at, now)
                }
                Timer::Schedule { pipeline } => {
                    if let Some(p) = self.pipelines.get_mut(&pipeline)
                        && p.schedule_timer == Some(at)
                    {
                        p.schedule_timer = None;
                        self.dirty.pipeline(&pipeline);
                    }
                    self.materialize(&pipeline, now)
                }
            }
        }
    }

    pub(super) fn lease_check(&mut self, pid: &str, aid: &str, at: Instant, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let Some(attempt) = p.attempts.get_mut(aid) else {
            return;
        };
        if attempt.timer_at != Some(at) {
            return;
        }
        attempt.timer_at = None;
        self.dirty.attempt(pid, aid);
        self.dirty.instance(pid, &attempt.instance);
        match attempt.lease {
            Lease::Free => {}
            Lease::Acknowledge(d) | Lease::Progress(d) if d > now.instant => {
                attempt.timer_at = Some(d);
                self.add_timer(
                    d,
                    Timer::Lease {
                        pipeline: pid.to_string(),
                        attempt: aid.to_string(),
                    },
                );
            }
            Lease::Acknowledge(_) => {
                self.leases_lapsed += 1;
                // Never acknowledged: the same attempt goes back to the queue under a new task id.
                attempt.lease = Lease::Free;
                attempt.task_id = None;
                attempt.status = Status::WaitingForRunner;
                // The work never started: its attemptTimeout starts again at the next hand-out.
                attempt.run_deadline = None;
                attempt.actual_start = None;
                attempt.hostname = None;
                let iid = attempt.instance.clone();
                let inst = &mut p.instances[iid.as_str()];
                inst.status = Status::WaitingForRunner;
                self.enqueue(pid, aid, now);
            }
            Lease::Progress(lapsed) => {
                // Ownership lapsed after acknowledgement: this attempt has timed out; retry as a new attempt. It
                // happened at the deadline, which may lie in dp-local's downtime: dated then, and the retry delay
                // counts from then.
                let now = now.at(lapsed);
                self.leases_lapsed += 1;
                attempt.lease = Lease::Free;
                attempt.status = Status::TimedOut;
                attempt.actual_end = Some(now.epoch);
                let iid = attempt.instance.clone();
                self.after_failed_attempt(pid, &iid, Status::TimedOut, now);
            }
        }
    }

    /// `attemptTimeout` passed while the attempt was still running: it ends `TIMEDOUT` and is retried as the
    /// rules say (the runner's next report answers `canceled: true`).
    pub(super) fn attempt_timed_out(&mut self, pid: &str, aid: &str, at: Instant, now: Now) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        let Some(attempt) = p.attempts.get_mut(aid) else {
            return;
        };
        if attempt.run_deadline != Some(at) || attempt.status != Status::Running {
            return;
        }
        // Dated at the deadline, which may lie in dp-local's downtime; the retry delay counts from then.
        let now = now.at(at);
        attempt.lease = Lease::Free;
        attempt.status = Status::TimedOut;
        attempt.actual_end = Some(now.epoch);
        attempt.error = Some(ErrorInfo {
            id: None,
            message: Some("The attempt ran longer than its attemptTimeout".into()),
            stack_trace: None,
        });
        let iid = attempt.instance.clone();
        self.dirty.attempt(pid, aid);
        self.after_failed_attempt(pid, &iid, Status::TimedOut, now);
    }

    /// After an attempt failed or timed out: a new attempt if retries are left, else the instance ends.
    pub(super) fn after_failed_attempt(
        &mut self,
        pid: &str,
        iid: &str,
        final_status: Status,
        now: Now,
    ) {
        let Some(p) = self.pipelines.get_mut(pid) else {
            return;
        };
        self.dirty.instance(pid, iid);
        let inst = &mut p.instances[iid];
        if (inst.attempts.len() as u32) < inst.max_attempts {
            let delay = inst.retry_delay;
            self.start_attempt(pid, iid, delay, now);
        } else {
            inst.status = final_status;
            inst.actual_end = Some(now.epoch);
            self.ended(pid, iid, now);
        }
    }

    pub(super) fn report_progress(
        &mut self,
        task_id: &str,
        fields: Vec<Field>,
        now: Now,
    ) -> Result<bool> {
        let Some((pid, aid)) = self.tasks.get(task_id) else {
            return Err(ServiceError::task_not_found(format!(
                "Task {task_id} not found"
            )));
        };
        let p = &mut self.pipelines[pid.as_str()];
        if p.deleted {
            return Ok(true);
        }
        let progress_timeout =
            p.instances[p.attempts[aid.as_str()].instance.as_str()].progress_timeout;
        let attempt = &mut p.attempts[aid.as_str()];
        if attempt.task_id.as_deref() != Some(task_id) {
            // The task was handed to another runner after its acknowledgement window lapsed.
            return Ok(true);
        }
        match attempt.status {
            Status::Running => {}
            Status::Finished | Status::Failed if attempt.ended_by_runner => {
                return Err(ServiceError::task_not_found(format!(
                    "Task {task_id} has already ended"
                )));
            }
            _ => return Ok(true),
        }
        let deadline = now.instant + now.clock.real(progress_timeout);
        attempt.lease = Lease::Progress(deadline);
        self.dirty.attempt(pid, aid);
        attempt.last_report = Some(now.epoch);
        for f in fields {
            attempt.reported.retain(|r| r.key != f.key);
            attempt.reported.push(f);
        }
        if attempt.timer_at.is_none_or(|t| deadline < t) {
            attempt.timer_at = Some(deadline);
            let (pid, aid) = (pid.clone(), aid.clone());
            self.add_timer(
                deadline,
                Timer::Lease {
                    pipeline: pid,
                    attempt: aid,
                },
            );
        }
        Ok(false)
    }

    pub(super) fn set_task_status(&mut self, input: SetTaskStatusInput, now: Now) -> Result<()> {
        let task_id = input.task_id.as_str();
        let Some((pid, aid)) = self.tasks.get(task_id).cloned() else {
            return Err(ServiceError::task_not_found(format!(
                "Task {task_id} not found"
            )));
        };
        if input
            .error_id
            .as_deref()
            .is_some_and(|e| e.starts_with("Service_"))
        {
            return Err(ServiceError::invalid_request(
                "errorId must not begin with \"Service_\"",
            ));
        }
        let status = input.task_status.as_str();
        if !matches!(status, "FINISHED" | "FAILED" | "FALSE") {
            return Err(ServiceError::invalid_request(format!(
                "Invalid taskStatus {status:?}: expected FINISHED, FAILED or FALSE"
            )));
        }
        let p = &mut self.pipelines[pid.as_str()];
        if p.deleted {
            return Err(ServiceError::pipeline_deleted(&pid));
        }
        let attempt = &mut p.attempts[aid.as_str()];
        if attempt.task_id.as_deref() != Some(task_id) {
            return Err(ServiceError::task_not_found(format!(
                "Task {task_id} was not acknowledged in time and has been handed out again"
            )));
        }
        match attempt.status {
            Status::Running => {}
            Status::Canceled => return Ok(()),
            Status::TimedOut => {
                return Err(ServiceError::task_not_found(format!(
                    "Task {task_id} timed out: no progress was reported within its reportProgressTimeout"
                )));
            }
            _ => {
                return Err(ServiceError::task_not_found(format!(
                    "Task {task_id} has already ended"
                )));
            }
        }
        let error = ErrorInfo {
            id: input.error_id,
            message: input.error_message,
            stack_trace: input.error_stack_trace,
        };
        let has_error =
            error.id.is_some() || error.message.is_some() || error.stack_trace.is_some();
        attempt.lease = Lease::Free;
        attempt.actual_end = Some(now.epoch);
        attempt.ended_by_runner = true;
        self.dirty.attempt(&pid, &aid);
        self.dirty.instance(&pid, &attempt.instance);
        attempt.error = has_error.then_some(error.clone());
        let iid = attempt.instance.clone();
        if status == "FINISHED" {
            attempt.status = Status::Finished;
            let inst = &mut p.instances[iid.as_str()];
            inst.status = Status::Finished;
            inst.actual_end = Some(now.epoch);
            inst.error = None;
            self.ended(&pid, &iid, now);
        } else if status == "FALSE"
            && resources::role_of(&p.instances[iid.as_str()]) == Role::Precondition
        {
            attempt.status = Status::Failed;
            if attempt.error.is_none() {
                attempt.error = Some(ErrorInfo {
                    id: None,
                    message: Some("The precondition does not hold".into()),
                    stack_trace: None,
                });
            }
            self.check_did_not_hold(&pid, &iid, now);
        } else {
            attempt.status = Status::Failed;
            p.instances[iid.as_str()].error = Some(error);
            // Before the retry is queued, so that a terminated resource is launched again for it.
            self.task_failed_on_resource(&pid, &iid, now);
            self.after_failed_attempt(&pid, &iid, Status::Failed, now);
        }
        Ok(())
    }
}

/// The task object of poll-for-task: the attempt with its activity's fields evaluated, and the objects those
/// fields refer to.
pub(super) fn task_object(p: &Pipeline, aid: &str, task_id: &str) -> TaskObject {
    let attempt = &p.attempts[aid];
    let inst = &p.instances[attempt.instance.as_str()];
    let def = &inst.definition;
    let ctx = RunContext {
        pipeline: p,
        current_instance: Some(inst),
    };
    let evaluate = |fields: Vec<Field>, current: &str| -> Vec<Field> {
        fields
            .into_iter()
            .map(|mut f| {
                if let Some(s) = f.string_value.as_mut().filter(|s| s.contains("#{"))
                    && let Ok(v) = expr::evaluate_template(s, current, &ctx)
                {
                    *s = v;
                }
                f
            })
            .collect()
    };
    let mut fields =
        with_component_fields(attempt_runtime_fields(p, attempt), def, &inst.component);
    // A precondition's task names the object it guards as `node` (what `Exists` checks, and what its expressions
    // call `node`).
    if let Some(owner) = inst.owner.as_deref().and_then(|o| p.instances.get(o))
        && !fields.iter().any(|f| f.key == "node")
    {
        fields.push(reference("node", &owner.component));
    }
    let mut objects = IndexMap::new();
    let refs_of = |fields: &[Field]| -> Vec<String> {
        fields
            .iter()
            .filter(|f| f.key != "parent" && f.key != "dependsOn" && !f.key.starts_with('@'))
            .filter_map(|f| f.ref_value.clone())
            .collect()
    };
    // Everything the work may need is reachable through references: data nodes, their formats, databases and
    // preconditions, schedules, the resource. Each object comes once, with its own fields evaluated in its own
    // context (a data node's `#{@scheduledStartTime}` is its instance's, which shares the task's period).
    let mut pending: VecDeque<String> = refs_of(&fields).into();
    objects.insert(
        aid.to_string(),
        PipelineObject {
            id: aid.into(),
            name: aid.into(),
            fields: evaluate(fields, aid),
        },
    );
    while let Some(r) = pending.pop_front() {
        if objects.contains_key(&r) {
            continue;
        }
        let Some(o) = def.object(&r) else {
            continue;
        };
        let fields = def.effective_fields(&r);
        pending.extend(refs_of(&fields));
        // The component's instance in this period, if it has one, is what its runtime fields come from.
        let own = p.by_component.get(&r).and_then(|ids| {
            ids.iter()
                .find(|i| p.instances[i.as_str()].scheduled_start == inst.scheduled_start)
        });
        let fields = match own {
            Some(iid) => evaluate(fields, iid),
            None => evaluate(fields, &r),
        };
        objects.insert(
            r.clone(),
            PipelineObject {
                id: r.clone(),
                name: o.name.clone(),
                fields,
            },
        );
    }
    TaskObject {
        task_id: Some(task_id.into()),
        pipeline_id: Some(p.id.clone()),
        attempt_id: Some(aid.into()),
        objects: Some(objects),
    }
}
