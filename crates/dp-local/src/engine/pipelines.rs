//! Pipelines and their tags: create (idempotent on name and uniqueId), delete, describe, list, tag.
//!
//! Rules only: no HTTP, no storage beyond marking the rows a change touched.

use super::*;

impl State {
    pub(super) fn create_pipeline(
        &mut self,
        input: CreatePipelineInput,
        now: Now,
    ) -> Result<CreatePipelineOutput> {
        let key = (input.name.clone(), input.unique_id.clone());
        if let Some(id) = self.by_unique.get(&key) {
            return Ok(CreatePipelineOutput {
                pipeline_id: id.clone(),
            });
        }
        let tags = input.tags.unwrap_or_default();
        check_tags(&tags)?;
        let id = loop {
            let id = format!("df-{}", random_id(19, UPPER_ALNUM));
            if !self.pipelines.contains_key(&id) {
                break id;
            }
        };
        self.by_unique.insert(key, id.clone());
        self.dirty.pipeline(&id);
        self.pipelines.insert(
            id.clone(),
            Pipeline {
                id: id.clone(),
                name: input.name,
                unique_id: input.unique_id,
                description: input.description,
                tags,
                created: now.epoch,
                deleted: false,
                state: PipelineState::Pending,
                latest: None,
                latest_version: 0,
                active: None,
                active_version: 0,
                activation: 0,
                first_activation: None,
                last_activation: None,
                last_deactivation: None,
                last_run: i64::MIN,
                instances: IndexMap::new(),
                attempts: IndexMap::new(),
                dependents: HashMap::new(),
                by_component: HashMap::new(),
                paused_components: HashSet::new(),
                cursors: IndexMap::new(),
                schedule_timer: None,
            },
        );
        Ok(CreatePipelineOutput { pipeline_id: id })
    }

    pub(super) fn delete_pipeline(&mut self, id: &str, now: Now) -> Result<()> {
        let Some(p) = self.pipelines.get_mut(id).filter(|p| !p.deleted) else {
            return Err(ServiceError::pipeline_not_found(id));
        };
        p.deleted = true;
        self.dirty.pipeline(id);
        let key = (p.name.clone(), p.unique_id.clone());
        self.by_unique.remove(&key);
        self.cancel_running(id, now);
        Ok(())
    }

    pub(super) fn describe_pipelines(&self, ids: &[String]) -> Result<DescribePipelinesOutput> {
        let mut list = Vec::with_capacity(ids.len());
        for id in ids {
            let p = self.pipeline(id)?;
            let mut fields = vec![
                text("@pipelineState", p.state_name()),
                text("@creationTime", format_utc(p.created)),
                text("@id", &p.id),
                text("@sphere", "PIPELINE"),
                text("name", &p.name),
                text("uniqueId", &p.unique_id),
            ];
            if let Some(d) = &p.description {
                fields.push(text("description", d));
            }
            if p.active.is_some() {
                fields.push(text("@version", p.active_version.to_string()));
            }
            if let Some(t) = p.first_activation {
                fields.push(text("@firstActivationTime", format_utc(t)));
            }
            if let Some(t) = p.last_activation {
                fields.push(text("@lastActivationTime", format_utc(t)));
            }
            if let Some(t) = p.last_deactivation {
                fields.push(text("@lastDeactivatedTime", format_utc(t)));
            }
            if let Some(t) = p.instances.values().filter_map(|i| i.actual_start).max() {
                fields.push(text("@latestRunTime", format_utc(t)));
            }
            let unhealthy = p.instances.values().any(|i| {
                matches!(
                    i.status,
                    Status::Failed | Status::CascadeFailed | Status::TimedOut
                )
            });
            if p.state != PipelineState::Pending {
                fields.push(text(
                    "@healthStatus",
                    if unhealthy { "ERROR" } else { "HEALTHY" },
                ));
            }
            list.push(PipelineDescription {
                pipeline_id: p.id.clone(),
                name: p.name.clone(),
                fields,
                description: p.description.clone(),
                tags: Some(p.tags.clone()),
            });
        }
        Ok(DescribePipelinesOutput {
            pipeline_description_list: list,
        })
    }

    pub(super) fn list_pipelines(&self, marker: Option<&str>) -> Result<ListPipelinesOutput> {
        let start = parse_marker(marker)?;
        let live: Vec<&Pipeline> = self.pipelines.values().filter(|p| !p.deleted).collect();
        let page: Vec<PipelineIdName> = live
            .iter()
            .skip(start)
            .take(PAGE_SIZE)
            .map(|p| PipelineIdName {
                id: Some(p.id.clone()),
                name: Some(p.name.clone()),
            })
            .collect();
        let more = start + page.len() < live.len();
        Ok(ListPipelinesOutput {
            pipeline_id_list: page,
            marker: more.then(|| (start + PAGE_SIZE).to_string()),
            has_more_results: Some(more),
        })
    }

    pub(super) fn add_tags(&mut self, id: &str, tags: Vec<Tag>) -> Result<()> {
        let p = self.pipeline_mut(id)?;
        let mut merged = p.tags.clone();
        for t in tags {
            match merged.iter_mut().find(|m| m.key == t.key) {
                Some(m) => m.value = t.value,
                None => merged.push(t),
            }
        }
        check_tags(&merged)?;
        p.tags = merged;
        self.dirty.pipeline(id);
        Ok(())
    }
}

pub(super) fn check_tags(tags: &[Tag]) -> Result<()> {
    if let Some(t) = tags
        .iter()
        .find(|t| t.key.to_ascii_lowercase().starts_with("aws:"))
    {
        return Err(ServiceError::invalid_request(format!(
            "Tag keys starting with 'aws:' are reserved: {}",
            t.key
        )));
    }
    if tags.len() > MAX_TAGS {
        return Err(ServiceError::invalid_request(format!(
            "A pipeline can have at most {MAX_TAGS} tags"
        )));
    }
    Ok(())
}
