//! A seeded generator of model-valid and deliberately broken input values.

use dp_model::{Shape, ShapeKind};
use serde_json::{Map, Value, json};

/// A small deterministic PRNG (xorshift64*), so every run generates the same cases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const WORDS: &[&str] = &[
    "a",
    "task-123",
    "df-0001",
    "é✓ unicode",
    "with space",
    "x=y,z",
    "@Act_1",
    "日本",
];

/// A value of `shape` that satisfies every model constraint.
pub fn valid(shape: &'static Shape, rng: &mut Rng, depth: usize) -> Value {
    match shape.kind {
        ShapeKind::Structure(members) => {
            let mut map = Map::new();
            for m in members {
                if m.required || (depth < 4 && rng.chance(60)) {
                    map.insert(m.name.into(), valid(m.shape, rng, depth + 1));
                }
            }
            Value::Object(map)
        }
        ShapeKind::List(member) => {
            let max = shape.max.unwrap_or(3).min(3) as usize;
            let min = shape.min.unwrap_or(0) as usize;
            let n = if depth > 4 {
                min
            } else {
                min + rng.below(max - min + 1)
            };
            Value::Array((0..n).map(|_| valid(member, rng, depth + 1)).collect())
        }
        ShapeKind::Map { value, .. } => {
            let mut map = Map::new();
            for i in 0..rng.below(3) {
                map.insert(format!("k{i}"), valid(value, rng, depth + 1));
            }
            Value::Object(map)
        }
        ShapeKind::String => {
            if let Some(v) = shape
                .enum_values
                .get(rng.below(shape.enum_values.len().max(1)))
            {
                return json!(v);
            }
            let word = WORDS[rng.below(WORDS.len())];
            let min = shape.min.unwrap_or(0) as usize;
            let max = shape.max.map_or(usize::MAX, |m| m as usize);
            let mut s = word.to_string();
            while s.chars().count() < min {
                s.push('x');
            }
            s.chars().take(max).collect::<String>().into()
        }
        ShapeKind::Integer | ShapeKind::Long => json!(rng.below(1000)),
        ShapeKind::Float | ShapeKind::Double => json!(rng.below(1000) as f64 / 4.0),
        ShapeKind::Boolean => json!(rng.chance(50)),
        ShapeKind::Timestamp => json!(1_704_067_200 + rng.below(100_000) as i64),
        ShapeKind::Blob => json!("YmxvYg=="),
    }
}

/// Breaks a valid value in one random place, in a way botocore or dp should report.
pub fn mutate(shape: &'static Shape, value: &mut Value, rng: &mut Rng) {
    match (&shape.kind, &mut *value) {
        (ShapeKind::Structure(members), Value::Object(map)) => {
            let present: Vec<&'static dp_model::Member> = members
                .iter()
                .filter(|m| map.contains_key(m.name))
                .collect();
            match rng.below(4) {
                0 => {
                    if let Some(m) = members
                        .iter()
                        .find(|m| m.required && map.contains_key(m.name))
                    {
                        map.shift_remove(m.name);
                        return;
                    }
                    map.insert("bogusMember".into(), json!("x"));
                }
                1 => {
                    map.insert("unknownThing".into(), json!(1));
                }
                _ if !present.is_empty() => {
                    let m = present[rng.below(present.len())];
                    mutate(m.shape, map.get_mut(m.name).unwrap(), rng);
                }
                _ => *value = json!("not a structure"),
            }
        }
        (ShapeKind::List(member), Value::Array(items)) => {
            if !items.is_empty() && rng.chance(70) {
                let i = rng.below(items.len());
                mutate(member, &mut items[i], rng);
            } else if rng.chance(50) {
                *value = json!({"not": "a list"});
            } else {
                *value = json!("scalar instead of list");
            }
        }
        (ShapeKind::String, _) => match rng.below(6) {
            0 => *value = json!(42),
            1 => *value = json!(["b", "c"]),
            2 => *value = json!(""),
            3 => *value = json!("x".repeat(shape.max.unwrap_or(10) as usize + 1)),
            4 => *value = json!("ctl\u{1}char"),
            _ => *value = json!(null),
        },
        (ShapeKind::Integer | ShapeKind::Long, _) => {
            *value = json!(if rng.chance(50) {
                json!("12")
            } else {
                json!(1.5)
            })
        }
        (ShapeKind::Boolean, _) => *value = json!("true"),
        (ShapeKind::Timestamp, _) => {
            *value = json!(if rng.chance(50) {
                json!("notadate")
            } else {
                json!([1])
            })
        }
        _ => *value = json!({"unexpected": true}),
    }
}
