//! Blueprints prepared for execution, and the registry of the project's blueprints.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use minijinja::Environment;
use processops_core::blueprint::{self, Blueprint, Node, Trigger};
use processops_core::run::Graph;
use processops_core::{Diagnostic, template};
use serde_json::Value;

use crate::EngineError;

/// A validated blueprint version with its templates compiled.
pub struct Compiled {
    pub blueprint: Blueprint,
    pub hash: String,
    pub source: String,
    pub graph: Graph,
    env: Environment<'static>,
    validators: HashMap<String, jsonschema::Validator>,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiled")
            .field("id", &self.blueprint.id)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// Templates are registered as `<node>:<field>` so each compiles once per version.
pub fn template_name(node: &str, field: &str) -> String {
    format!("{node}:{field}")
}

impl Compiled {
    /// Check and compile a blueprint source. Errors carry every diagnostic.
    pub fn from_source(source: &str) -> Result<Self, Vec<Diagnostic>> {
        let checked = blueprint::check(source);
        let Some(bp) = checked.blueprint else {
            return Err(checked.diagnostics);
        };
        let mut env = template::environment();
        for node in &bp.nodes {
            for (field, text) in node_templates(node) {
                // Validation compiled these already; a failure here would be a validator bug.
                if let Err(e) =
                    env.add_template_owned(template_name(node.id(), &field), text.to_owned())
                {
                    return Err(vec![Diagnostic::error(
                        "template-syntax",
                        "",
                        e.to_string(),
                    )]);
                }
            }
        }
        let mut validators = HashMap::new();
        for t in &bp.triggers {
            if let Some(schema) = t.input_schema()
                && let Ok(v) = jsonschema::validator_for(schema)
            {
                validators.insert(t.id().to_owned(), v);
            }
        }
        for node in &bp.nodes {
            if let Node::Prompt(p) = node
                && let Some(schema) = &p.output_schema
                && let Ok(v) = jsonschema::validator_for(schema)
            {
                validators.insert(format!("node:{}", p.id), v);
            }
        }
        Ok(Self {
            hash: blueprint::version_hash(&bp),
            graph: Graph::new(&bp),
            source: source.to_owned(),
            blueprint: bp,
            env,
            validators,
        })
    }

    pub fn node(&self, id: &str) -> Result<&Node, EngineError> {
        self.blueprint.node(id).ok_or_else(|| {
            EngineError::Internal(format!("node `{id}` is not in version {}", self.hash))
        })
    }

    /// Render a node's template against a context.
    pub fn render(
        &self,
        node: &str,
        field: &str,
        ctx: &minijinja::Value,
    ) -> Result<String, String> {
        let tmpl = self
            .env
            .get_template(&template_name(node, field))
            .map_err(|e| e.to_string())?;
        tmpl.render(ctx)
            .map_err(|e| template::TemplateError::from(e).message)
    }

    /// Evaluate a condition expression.
    pub fn eval(&self, expr: &str, ctx: &minijinja::Value) -> Result<bool, String> {
        let e = self
            .env
            .compile_expression(expr)
            .map_err(|e| template::TemplateError::from(e).message)?;
        e.eval(ctx)
            .map(|v| v.is_true())
            .map_err(|e| template::TemplateError::from(e).message)
    }

    /// Check a payload against a trigger's input schema; the errors name each bad field.
    pub fn check_payload(&self, trigger: &str, payload: &Value) -> Result<(), Vec<String>> {
        let Some(v) = self.validators.get(trigger) else {
            return Ok(());
        };
        let errors: Vec<String> = v
            .iter_errors(payload)
            .map(|e| {
                let at = e.instance_path.to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    pub fn output_validator(&self, node: &str) -> Option<&jsonschema::Validator> {
        self.validators.get(&format!("node:{node}"))
    }

    pub fn trigger(&self, id: Option<&str>) -> Result<&Trigger, EngineError> {
        match id {
            Some(id) => self
                .blueprint
                .trigger(id)
                .ok_or_else(|| EngineError::UnknownTrigger {
                    blueprint: self.blueprint.id.clone(),
                    trigger: id.to_owned(),
                    known: self
                        .blueprint
                        .triggers
                        .iter()
                        .map(|t| t.id().to_owned())
                        .collect(),
                }),
            None => self
                .blueprint
                .triggers
                .iter()
                .find(|t| matches!(t, Trigger::Manual(_)))
                .or_else(|| self.blueprint.triggers.first())
                .ok_or_else(|| EngineError::NoTrigger(self.blueprint.id.clone())),
        }
    }
}

/// Every template of a node, as (field name, source).
fn node_templates(node: &Node) -> Vec<(String, &str)> {
    let mut out: Vec<(String, &str)> = Vec::new();
    match node {
        Node::Retrieve(n) => {
            out.push(("query".into(), &n.query));
            if let Some(m) = &n.memory {
                out.push(("memory.subject".into(), &m.subject));
            }
        }
        Node::Prompt(n) => {
            out.push(("template".into(), &n.template));
            if let Some(s) = &n.system {
                out.push(("system".into(), s));
            }
            if let Some(s) = &n.fallback_text {
                out.push(("fallback_text".into(), s));
            }
        }
        Node::Transform(n) => {
            out.extend(n.set.iter().map(|(k, v)| (format!("set.{k}"), v.as_str())))
        }
        Node::Review(n) => {
            out.push(("draft".into(), &n.draft));
            out.extend(
                n.not_by
                    .iter()
                    .enumerate()
                    .map(|(i, t)| (format!("not_by.{i}"), t.as_str())),
            );
            if let Some(t) = &n.task_title {
                out.push(("task_title".into(), t));
            }
        }
        Node::Output(n) => {
            if let Some(f) = &n.file {
                out.push(("file.path".into(), &f.path));
                out.push(("file.content".into(), &f.content));
            }
            if let Some(h) = &n.http {
                out.push(("http.url".into(), &h.url));
                out.extend(
                    h.headers
                        .iter()
                        .map(|(k, v)| (format!("http.headers.{k}"), v.as_str())),
                );
                if let Some(b) = &h.body {
                    out.push(("http.body".into(), b));
                }
            }
            if let Some(d) = &n.dataset {
                out.push(("dataset.path".into(), &d.path));
                out.extend(
                    d.record
                        .iter()
                        .map(|(k, v)| (format!("dataset.record.{k}"), v.as_str())),
                );
            }
            if let Some(e) = &n.emit {
                out.extend(
                    e.payload
                        .iter()
                        .map(|(k, v)| (format!("emit.payload.{k}"), v.as_str())),
                );
            }
        }
        Node::Route(_) | Node::Branch(_) => {}
    }
    out
}

/// A blueprint file that failed to load, kept so `serve` can report it.
#[derive(Debug, Clone)]
pub struct LoadProblem {
    pub file: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
}

/// The project's current blueprints plus every version runs were started with.
#[derive(Default)]
pub struct Registry {
    current: RwLock<HashMap<String, Arc<Compiled>>>,
    by_hash: RwLock<HashMap<String, Arc<Compiled>>>,
    /// The file each current blueprint was loaded from (the designer saves back to it).
    files: RwLock<HashMap<String, PathBuf>>,
}

impl Registry {
    /// Load every `*.yaml`/`*.yml` in a folder. Broken files are reported, not fatal.
    pub fn load_dir(&self, dir: &Path) -> Result<Vec<LoadProblem>, EngineError> {
        let mut problems = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            EngineError::Io(format!(
                "cannot read the blueprints folder {}: {e}",
                dir.display()
            ))
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        for path in paths {
            let source = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(LoadProblem {
                        file: path.clone(),
                        diagnostics: vec![
                            Diagnostic::error("io", "", format!("cannot read the file: {e}"))
                                .at(1, 1),
                        ],
                    });
                    continue;
                }
            };
            match Compiled::from_source(&source) {
                Ok(c) => {
                    if let Some(existing) = self.get(&c.blueprint.id) {
                        problems.push(LoadProblem {
                            file: path.clone(),
                            diagnostics: vec![
                                Diagnostic::error(
                                    "duplicate-id",
                                    "/id",
                                    format!(
                                        "another file already defines blueprint `{}`",
                                        existing.blueprint.id
                                    ),
                                )
                                .help("give each blueprint file its own `id`")
                                .at(1, 1),
                            ],
                        });
                        continue;
                    }
                    self.set_file(&c.blueprint.id, path.clone());
                    self.insert(Arc::new(c));
                }
                Err(diagnostics) => problems.push(LoadProblem {
                    file: path,
                    diagnostics,
                }),
            }
        }
        Ok(problems)
    }

    pub fn insert(&self, c: Arc<Compiled>) {
        if let Ok(mut by_hash) = self.by_hash.write() {
            by_hash.insert(c.hash.clone(), c.clone());
        }
        if let Ok(mut current) = self.current.write() {
            current.insert(c.blueprint.id.clone(), c);
        }
    }

    /// The file a blueprint was loaded from or saved to.
    pub fn file(&self, id: &str) -> Option<PathBuf> {
        self.files.read().ok()?.get(id).cloned()
    }

    pub fn set_file(&self, id: &str, path: PathBuf) {
        if let Ok(mut files) = self.files.write() {
            files.insert(id.to_owned(), path);
        }
    }

    /// The current version of a blueprint.
    pub fn get(&self, id: &str) -> Option<Arc<Compiled>> {
        self.current.read().ok()?.get(id).cloned()
    }

    pub fn by_hash(&self, hash: &str) -> Option<Arc<Compiled>> {
        self.by_hash.read().ok()?.get(hash).cloned()
    }

    pub fn remember_version(&self, c: Arc<Compiled>) {
        if let Ok(mut by_hash) = self.by_hash.write() {
            by_hash.insert(c.hash.clone(), c);
        }
    }

    pub fn all(&self) -> Vec<Arc<Compiled>> {
        let mut all: Vec<_> = self
            .current
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.blueprint.id.cmp(&b.blueprint.id));
        all
    }
}
