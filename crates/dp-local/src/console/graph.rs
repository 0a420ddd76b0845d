//! A pipeline definition as a graph: one node per object, one edge per reference field (labelled with the field),
//! laid out in layers by dp-local itself and drawn as SVG (through maud, so every name is escaped).
//!
//! Layering: an object that refers to nothing is in layer 0; any other object sits one layer right of the
//! deepest object it refers to (cycles, which the definition checks refuse for `parent`, are cut where found).
//! So schedules and data nodes stand on the left and the activities that use them to their right.
//!
//! Legibility: every column puts its boxes on one shared grid of rows, so the bands between rows are free of
//! boxes across the whole width. An edge between neighbouring columns crosses only the gap between them; a longer
//! one drops into the band next to its source row, runs along it and climbs out next to its target, so it never
//! crosses a box. Each edge leaves and enters its boxes at a port of its own (spread along the side), and its label
//! sits near its own source port, so labels of edges that share a box do not fall on one another.

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
    /// The path, as straight and cubic segments.
    pub route: Vec<Segment>,
    /// Where the label's centre goes.
    pub label_at: (f64, f64),
}

/// One piece of an edge's path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Segment {
    /// A straight line to the point.
    Line((f64, f64), (f64, f64)),
    /// A cubic Bézier: start, two control points, end.
    Cubic((f64, f64), (f64, f64), (f64, f64), (f64, f64)),
}

impl Segment {
    /// The point at `t` in 0..=1.
    pub(crate) fn at(&self, t: f64) -> (f64, f64) {
        match *self {
            Segment::Line(a, b) => (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t),
            Segment::Cubic(a, b, c, d) => {
                let u = 1.0 - t;
                let w = [u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t];
                (
                    w[0] * a.0 + w[1] * b.0 + w[2] * c.0 + w[3] * d.0,
                    w[0] * a.1 + w[1] * b.1 + w[2] * c.1 + w[3] * d.1,
                )
            }
        }
    }
}

fn path_data(route: &[Segment]) -> String {
    let mut d = String::new();
    for (i, segment) in route.iter().enumerate() {
        let start = match segment {
            Segment::Line(a, _) | Segment::Cubic(a, _, _, _) => *a,
        };
        if i == 0 {
            d.push_str(&format!("M {:.1} {:.1}", start.0, start.1));
        }
        match segment {
            Segment::Line(_, b) => d.push_str(&format!(" L {:.1} {:.1}", b.0, b.1)),
            Segment::Cubic(_, b, c, e) => d.push_str(&format!(
                " C {:.1} {:.1}, {:.1} {:.1}, {:.1} {:.1}",
                b.0, b.1, c.0, c.1, e.0, e.1
            )),
        }
    }
    d
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
                    route: Vec::new(),
                    label_at: (0.0, 0.0),
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
    let nodes: Vec<Node<'_>> = nodes
        .into_iter()
        .map(|n| n.expect("every node placed"))
        .collect();
    route(&nodes, &mut edges);
    Graph {
        nodes,
        edges,
        // Room on the right for edges that bow out of the last column, and below for the last band.
        width: 2.0 * PAD + layers as f64 * NODE_WIDTH + (layers - 1) as f64 * GAP_X + BOW,
        height: 2.0 * PAD + rows.max(1) as f64 * NODE_HEIGHT + rows.max(1) as f64 * GAP_Y,
    }
}

/// How far an edge between boxes of one column bows out to the right.
const BOW: f64 = 60.0;

/// Gives every edge its ports, its path and its label's place.
fn route(nodes: &[Node<'_>], edges: &mut [Edge]) {
    // Ports: the n edges leaving (or entering) one side of a box are spread evenly along it, in the order of the
    // other ends' heights, so that they do not cross at the box.
    let mut leaving: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut entering: HashMap<usize, Vec<usize>> = HashMap::new();
    for (k, e) in edges.iter().enumerate() {
        leaving.entry(e.from).or_default().push(k);
        entering.entry(e.to).or_default().push(k);
    }
    let mut out_port = vec![0.0; edges.len()];
    let mut in_port = vec![0.0; edges.len()];
    let spread =
        |list: &mut Vec<usize>, other: &dyn Fn(usize) -> f64, port: &mut [f64], top: f64| {
            list.sort_by(|a, b| other(*a).total_cmp(&other(*b)).then(a.cmp(b)));
            let n = list.len() as f64;
            for (i, &k) in list.iter().enumerate() {
                port[k] = top + NODE_HEIGHT * (i as f64 + 1.0) / (n + 1.0);
            }
        };
    for (&n, list) in leaving.iter_mut() {
        spread(list, &|k| nodes[edges[k].to].y, &mut out_port, nodes[n].y);
    }
    for (&n, list) in entering.iter_mut() {
        spread(list, &|k| nodes[edges[k].from].y, &mut in_port, nodes[n].y);
    }
    // Edges that run along one band are set apart a little within it.
    let mut band_use: HashMap<i64, usize> = HashMap::new();
    for (k, e) in edges.iter_mut().enumerate() {
        let (a, b) = (&nodes[e.from], &nodes[e.to]);
        let (y1, y2) = (out_port[k], in_port[k]);
        let columns_apart = ((a.x - b.x) / (NODE_WIDTH + GAP_X)).round() as i64;
        if e.from == e.to || columns_apart == 0 {
            // Same column: out of the right side, bowing right, back into the right side.
            let (x1, x2) = (a.x + NODE_WIDTH, b.x + NODE_WIDTH);
            e.route = vec![Segment::Cubic(
                (x1, y1),
                (x1 + BOW, y1),
                (x2 + BOW, y2),
                (x2, y2),
            )];
            e.label_at = (x1 + BOW * 0.75, (y1 + y2) / 2.0 - 4.0);
            continue;
        }
        // Leave on the side that faces the target.
        let (x1, x2, dir) = if a.x > b.x {
            (a.x, b.x + NODE_WIDTH, -1.0)
        } else {
            (a.x + NODE_WIDTH, b.x, 1.0)
        };
        if columns_apart.abs() == 1 {
            let mid = (x1 + x2) / 2.0;
            e.route = vec![Segment::Cubic((x1, y1), (mid, y1), (mid, y2), (x2, y2))];
            let at = e.route[0].at(0.3);
            e.label_at = (at.0, at.1 - 4.0);
            continue;
        }
        // Longer: into the band beside the source row, along it, and out beside the target.
        let row_top = a.y;
        let below = b.y > a.y || (b.y == a.y && a.y <= PAD + 1.0);
        let band = if below {
            row_top + NODE_HEIGHT + GAP_Y / 2.0
        } else {
            row_top - GAP_Y / 2.0
        };
        let key = (band * 10.0) as i64;
        let used = band_use.entry(key).or_default();
        let offset = [0.0, -5.0, 5.0, -9.0, 9.0][*used % 5];
        *used += 1;
        let yb = band + offset;
        let turn = GAP_X / 2.0;
        let (xa, xb) = (x1 + dir * turn, x2 - dir * turn);
        e.route = vec![
            Segment::Cubic(
                (x1, y1),
                (x1 + dir * turn * 0.6, y1),
                (xa - dir * turn * 0.4, yb),
                (xa, yb),
            ),
            Segment::Line((xa, yb), (xb, yb)),
            Segment::Cubic(
                (xb, yb),
                (xb + dir * turn * 0.4, yb),
                (x2 - dir * turn * 0.6, y2),
                (x2, y2),
            ),
        ];
        e.label_at = (xa + dir * 30.0, yb - 4.0);
    }
    place_labels(nodes, edges);
}

/// The box an edge label takes when centred on `at` (11px text: about 6.5px a character, 12px high).
fn label_box(label: &str, at: (f64, f64)) -> (f64, f64, f64, f64) {
    let w = label.chars().count() as f64 * 6.5;
    (at.0 - w / 2.0, at.1 - 11.0, w, 12.0)
}

fn overlaps(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64)) -> bool {
    a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3
}

/// Puts each label on its own edge where it overlaps no label placed before it and no box: the first free spot
/// walking from the preferred one along the edge's path.
fn place_labels(nodes: &[Node<'_>], edges: &mut [Edge]) {
    let boxes: Vec<(f64, f64, f64, f64)> = nodes
        .iter()
        .map(|n| (n.x, n.y, NODE_WIDTH, NODE_HEIGHT))
        .collect();
    let mut placed: Vec<(f64, f64, f64, f64)> = Vec::new();
    for e in edges.iter_mut() {
        let mut candidates = vec![e.label_at];
        for segment in &e.route {
            for step in 1..20 {
                let (x, y) = segment.at(step as f64 / 20.0);
                candidates.push((x, y - 4.0));
            }
        }
        let free = |at: (f64, f64)| {
            let b = label_box(&e.label, at);
            !placed.iter().any(|p| overlaps(*p, b)) && !boxes.iter().any(|n| overlaps(*n, b))
        };
        if let Some(at) = candidates.iter().copied().find(|at| free(*at)) {
            e.label_at = at;
        }
        placed.push(label_box(&e.label, e.label_at));
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

/// The SVG of `objects`: `g.node` per object (with `data-id`, and `data-status` when `states` names the state of
/// the component's latest instance), `g.edge` per reference (with `data-field`).
pub(crate) fn svg(objects: &[PipelineObject], states: &HashMap<&str, &str>) -> Markup {
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
                g.edge data-field=(edge.label) data-from=(a.object.id) data-to=(b.object.id) {
                    path d=(path_data(&edge.route)) marker-end="url(#arrow)" {}
                }
            }
            @for node in &graph.nodes {
                @let state = states.get(node.object.id.as_str()).copied();
                g.node.(node.kind) data-id=(node.object.id) data-status=[state] transform=(format!("translate({:.1},{:.1})", node.x, node.y)) {
                    title { (node.object.id) @if let Some(s) = state { " (" (s) ")" } }
                    rect width=(NODE_WIDTH) height=(NODE_HEIGHT) rx="6" {}
                    text.name x="10" y="19" { (shorten(&node.object.name, 26)) }
                    text.type x="10" y="36" { (shorten(super::data::text(&node.object.fields, "type").unwrap_or(if node.object.id == "Default" { "Default" } else { "(no type)" }), 28)) }
                    @if let Some(s) = state {
                        // The state of the component's latest instance, as a coloured mark in the corner.
                        rect.{"state s-" (s)} x=(NODE_WIDTH - 14.0) y="6" width="8" height="8" rx="4" {}
                    }
                }
            }
            // Labels last, so no node hides them.
            @for edge in &graph.edges {
                text.edge-label data-field=(edge.label) x=(format!("{:.1}", edge.label_at.0)) y=(format!("{:.1}", edge.label_at.1)) { (edge.label) }
            }
        }
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
        let svg = svg(&objects, &HashMap::new()).into_string();
        assert_eq!(svg.matches("<g class=\"node ").count(), 5);
        assert_eq!(svg.matches("<g class=\"edge\"").count(), 5);
    }

    /// Labels do not overlap and no edge crosses a box that is not one of its ends, on a definition shaped like
    /// the samples' three-node EFS backup (three resources, one activity fanning out to three, Default's schedule).
    #[test]
    fn the_graph_stays_legible() {
        let r = |k: &'static str, v: &'static str| (k, v, true);
        let t = |v: &'static str| ("type", v, false);
        let objects = vec![
            object("Default", &[r("schedule", "Daily")]),
            object("Box1", &[t("Ec2Resource")]),
            object("Box2", &[t("Ec2Resource")]),
            object("Box3", &[t("Ec2Resource")]),
            object("Daily", &[t("Schedule")]),
            object("Init", &[t("ShellCommandActivity"), r("runsOn", "Box1")]),
            object(
                "Part1",
                &[
                    t("ShellCommandActivity"),
                    r("runsOn", "Box1"),
                    r("dependsOn", "Init"),
                ],
            ),
            object(
                "Part2",
                &[
                    t("ShellCommandActivity"),
                    r("runsOn", "Box2"),
                    r("dependsOn", "Init"),
                ],
            ),
            object(
                "Part3",
                &[
                    t("ShellCommandActivity"),
                    r("runsOn", "Box3"),
                    r("dependsOn", "Init"),
                ],
            ),
            object(
                "Finish",
                &[
                    t("ShellCommandActivity"),
                    r("runsOn", "Box1"),
                    r("dependsOn", "Part1"),
                    r("dependsOn", "Part2"),
                    r("dependsOn", "Part3"),
                ],
            ),
        ];
        let g = layout(&objects);
        // Labels: 11px text is at most about 6.5px a character wide and 12px high.
        let boxes: Vec<(f64, f64, f64, f64, &str)> = g
            .edges
            .iter()
            .map(|e| {
                let w = e.label.len() as f64 * 6.5;
                (
                    e.label_at.0 - w / 2.0,
                    e.label_at.1 - 11.0,
                    w,
                    12.0,
                    e.label.as_str(),
                )
            })
            .collect();
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                let apart =
                    a.0 + a.2 <= b.0 || b.0 + b.2 <= a.0 || a.1 + a.3 <= b.1 || b.1 + b.3 <= a.1;
                assert!(
                    apart,
                    "labels {} at {:?} and {} at {:?} overlap",
                    a.4,
                    (a.0, a.1),
                    b.4,
                    (b.0, b.1)
                );
            }
        }
        for e in &g.edges {
            for segment in &e.route {
                for step in 0..=50 {
                    let (x, y) = segment.at(step as f64 / 50.0);
                    for (n, node) in g.nodes.iter().enumerate() {
                        if n == e.from || n == e.to {
                            continue;
                        }
                        let inside = x > node.x + 1.0
                            && x < node.x + NODE_WIDTH - 1.0
                            && y > node.y + 1.0
                            && y < node.y + NODE_HEIGHT - 1.0;
                        assert!(
                            !inside,
                            "edge {} from {} to {} crosses {}",
                            e.label,
                            g.nodes[e.from].object.id,
                            g.nodes[e.to].object.id,
                            node.object.id
                        );
                    }
                    assert!(
                        x >= 0.0 && x <= g.width && y >= 0.0 && y <= g.height,
                        "edge {} leaves the canvas",
                        e.label
                    );
                }
            }
        }
    }

    #[test]
    fn names_are_escaped() {
        let mut o = object("X", &[("type", "ShellCommandActivity", false)]);
        o.name = "<img src=x onerror=alert(1)>".into();
        let svg = svg(&[o], &HashMap::new()).into_string();
        assert!(!svg.contains("<img"), "{svg}");
        assert!(svg.contains("&lt;img"), "{svg}");
    }
}
