//! A pipeline definition as a graph: one node per object, one edge per reference field (labelled with the field),
//! laid out in layers by dp-local itself and drawn as SVG (through maud, so every name is escaped).
//!
//! Layering: an object that refers to nothing is in layer 0; any other object sits one layer right of the
//! deepest object it refers to (cycles, which the definition checks refuse for `parent`, are cut where found).
//! So schedules and data nodes stand on the left and the activities that use them to their right.

use std::collections::{BTreeMap, HashMap};

use dp_model::types::PipelineObject;
use maud::{Markup, html};

const NODE_WIDTH: f64 = 190.0;
const NODE_HEIGHT: f64 = 46.0;
const GAP_X: f64 = 110.0;
const GAP_Y: f64 = 26.0;
const PAD: f64 = 16.0;

/// A node placed on the canvas.
pub(crate) struct Node<'a> {
    pub object: &'a PipelineObject,
    pub kind: &'static str,
    pub x: f64,
    pub y: f64,
}

/// An edge: from the object holding the field to the object it names.
pub(crate) struct Edge {
    pub from: usize,
    pub to: usize,
    pub label: String,
}

/// The laid-out graph.
pub(crate) struct Graph<'a> {
    pub nodes: Vec<Node<'a>>,
    pub edges: Vec<Edge>,
    pub width: f64,
    pub height: f64,
}

/// The colour class of an object's `type`.
pub(crate) fn kind_of(object: &PipelineObject) -> &'static str {
    let ty = super::data::text(&object.fields, "type").unwrap_or("");
    if object.id == "Default" {
        "default"
    } else if ty.ends_with("Activity") {
        "activity"
    } else if ty.ends_with("DataNode") || ty == "SqlTable" || ty == "DynamoDBTable" {
        "data"
    } else if ty == "Schedule" {
        "schedule"
    } else if ty.ends_with("Resource") || ty == "EmrCluster" || ty == "Ec2Resource" {
        "resource"
    } else if ty.ends_with("Precondition") || ty.ends_with("Exists") || ty == "Exists" {
        "precondition"
    } else if ty == "SnsAlarm" || ty == "Terminate" {
        "action"
    } else if ty.ends_with("Database") {
        "database"
    } else {
        "other"
    }
}

/// Lays out `objects`.
pub(crate) fn layout(objects: &[PipelineObject]) -> Graph<'_> {
    let index: HashMap<&str, usize> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.as_str(), i))
        .collect();
    let mut edges = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        for field in &object.fields {
            if let Some(target) = field.ref_value.as_deref()
                && let Some(&j) = index.get(target)
            {
                edges.push(Edge {
                    from: i,
                    to: j,
                    label: field.key.clone(),
                });
            }
        }
    }
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); objects.len()];
    for e in &edges {
        if e.from != e.to {
            out[e.from].push(e.to);
        }
    }
    // 0: not visited, 1: on the stack, 2: done.
    let mut state = vec![0u8; objects.len()];
    let mut layer = vec![0usize; objects.len()];
    fn visit(n: usize, out: &[Vec<usize>], state: &mut [u8], layer: &mut [usize]) -> usize {
        match state[n] {
            2 => return layer[n],
            1 => return 0,
            _ => {}
        }
        state[n] = 1;
        let mut deepest = None;
        for &m in &out[n] {
            let l = visit(m, out, state, layer);
            deepest = Some(deepest.map_or(l, |d: usize| d.max(l)));
        }
        layer[n] = deepest.map_or(0, |d| d + 1);
        state[n] = 2;
        layer[n]
    }
    for n in 0..objects.len() {
        visit(n, &out, &mut state, &mut layer);
    }
    let mut columns: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (n, l) in layer.iter().enumerate() {
        columns.entry(*l).or_default().push(n);
    }
    let mut nodes: Vec<Option<Node<'_>>> = (0..objects.len()).map(|_| None).collect();
    let mut rows = 0usize;
    for (l, members) in &mut columns {
        members.sort_by(|a, b| objects[*a].id.cmp(&objects[*b].id));
        rows = rows.max(members.len());
        for (row, &n) in members.iter().enumerate() {
            nodes[n] = Some(Node {
                object: &objects[n],
                kind: kind_of(&objects[n]),
                x: PAD + *l as f64 * (NODE_WIDTH + GAP_X),
                y: PAD + row as f64 * (NODE_HEIGHT + GAP_Y),
            });
        }
    }
    let layers = columns.len().max(1);
    Graph {
        nodes: nodes
            .into_iter()
            .map(|n| n.expect("every node placed"))
            .collect(),
        edges,
        width: 2.0 * PAD + layers as f64 * NODE_WIDTH + (layers - 1) as f64 * GAP_X,
        height: 2.0 * PAD + rows.max(1) as f64 * NODE_HEIGHT + (rows.max(1) - 1) as f64 * GAP_Y,
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

/// The SVG of `objects`: `g.node` per object (with `data-id`), `g.edge` per reference (with `data-field`).
pub(crate) fn svg(objects: &[PipelineObject]) -> Markup {
    let graph = layout(objects);
    let (w, h) = (
        format!("{:.0}", graph.width),
        format!("{:.0}", graph.height),
    );
    html! {
        svg.graph xmlns="http://www.w3.org/2000/svg" width=(w) height=(h) viewBox={ "0 0 " (w) " " (h) }
            role="img" aria-label="pipeline definition graph" {
            defs {
                marker #arrow viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" {}
                }
            }
            @for edge in &graph.edges {
                @let (a, b) = (&graph.nodes[edge.from], &graph.nodes[edge.to]);
                @let (x1, y1, x2, y2) = endpoints(a, b);
                @let bend = bend(edge, a, b);
                g.edge data-field=(edge.label) data-from=(a.object.id) data-to=(b.object.id) {
                    path d=(format!("M {x1:.1} {y1:.1} C {:.1} {:.1}, {:.1} {:.1}, {x2:.1} {y2:.1}",
                        x1 - (x1 - x2) / 2.0 + bend, y1, x2 + (x1 - x2) / 2.0 + bend, y2))
                        marker-end="url(#arrow)" {}
                }
            }
            @for node in &graph.nodes {
                g.node.(node.kind) data-id=(node.object.id) transform=(format!("translate({:.1},{:.1})", node.x, node.y)) {
                    title { (node.object.id) }
                    rect width=(NODE_WIDTH) height=(NODE_HEIGHT) rx="6" {}
                    text.name x="10" y="19" { (shorten(&node.object.name, 26)) }
                    text.type x="10" y="36" { (shorten(super::data::text(&node.object.fields, "type").unwrap_or(if node.object.id == "Default" { "Default" } else { "(no type)" }), 28)) }
                }
            }
            // Labels last, so no node hides them.
            @for edge in &graph.edges {
                @let (a, b) = (&graph.nodes[edge.from], &graph.nodes[edge.to]);
                @let (x1, y1, x2, y2) = endpoints(a, b);
                @let bend = bend(edge, a, b);
                text.edge-label data-field=(edge.label) x=(format!("{:.1}", (x1 + x2) / 2.0 + bend * 0.75)) y=(format!("{:.1}", (y1 + y2) / 2.0 - 4.0)) { (edge.label) }
            }
        }
    }
}

/// How far an edge between nodes of one column bows out, so it does not run along the column.
fn bend(edge: &Edge, a: &Node<'_>, b: &Node<'_>) -> f64 {
    if edge.from == edge.to || (a.x - b.x).abs() < 1.0 {
        60.0
    } else {
        0.0
    }
}

/// Where an edge leaves the referring node and enters the referred one.
fn endpoints(a: &Node<'_>, b: &Node<'_>) -> (f64, f64, f64, f64) {
    let ay = a.y + NODE_HEIGHT / 2.0;
    let by = b.y + NODE_HEIGHT / 2.0;
    if a.x > b.x + 1.0 {
        (a.x, ay, b.x + NODE_WIDTH, by)
    } else if b.x > a.x + 1.0 {
        (a.x + NODE_WIDTH, ay, b.x, by)
    } else {
        (a.x + NODE_WIDTH, ay, b.x + NODE_WIDTH, by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dp_model::types::Field;

    fn object(id: &str, fields: &[(&str, &str, bool)]) -> PipelineObject {
        PipelineObject {
            id: id.into(),
            name: id.into(),
            fields: fields
                .iter()
                .map(|(k, v, is_ref)| Field {
                    key: (*k).into(),
                    string_value: (!is_ref).then(|| (*v).to_string()),
                    ref_value: is_ref.then(|| (*v).to_string()),
                })
                .collect(),
        }
    }

    #[test]
    fn layers_follow_references_and_every_ref_is_an_edge() {
        let objects = vec![
            object("Default", &[("schedule", "Daily", true)]),
            object("Daily", &[("type", "Schedule", false)]),
            object(
                "In",
                &[("type", "S3DataNode", false), ("schedule", "Daily", true)],
            ),
            object(
                "Copy",
                &[
                    ("type", "ShellCommandActivity", false),
                    ("input", "In", true),
                    ("dependsOn", "Prep", true),
                ],
            ),
            object(
                "Prep",
                &[
                    ("type", "ShellCommandActivity", false),
                    ("dependsOn", "Copy", true),
                ],
            ),
        ];
        let g = layout(&objects);
        assert_eq!(g.nodes.len(), 5);
        assert_eq!(g.edges.len(), 5);
        let x = |id: &str| g.nodes.iter().find(|n| n.object.id == id).unwrap().x;
        assert!(
            x("Daily") < x("In") && x("In") < x("Copy"),
            "referred objects stand left"
        );
        assert_eq!(kind_of(&objects[1]), "schedule");
        assert_eq!(kind_of(&objects[2]), "data");
        assert_eq!(kind_of(&objects[3]), "activity");
        let svg = svg(&objects).into_string();
        assert_eq!(svg.matches("<g class=\"node ").count(), 5);
        assert_eq!(svg.matches("<g class=\"edge\"").count(), 5);
    }

    #[test]
    fn names_are_escaped() {
        let mut o = object("X", &[("type", "ShellCommandActivity", false)]);
        o.name = "<img src=x onerror=alert(1)>".into();
        let svg = svg(&[o]).into_string();
        assert!(!svg.contains("<img"), "{svg}");
        assert!(svg.contains("&lt;img"), "{svg}");
    }
}
