//! Every operation's input and output, generated from the shapes, survives a trip through the generated types.

use crate::generate::{Rng, valid};

#[test]
fn generated_values_roundtrip_through_typed_layer() {
    let mut rng = Rng::new(7);
    let mut checked = 0;
    for op in dp_model::operations() {
        for (output, shape) in [(false, op.input), (true, op.output)] {
            let Some(shape) = shape else { continue };
            for _ in 0..25 {
                let value = valid(shape, &mut rng, 0);
                assert!(
                    dp_model::validate::validate(shape, &value).is_ok(),
                    "generator made an invalid {} value: {value}",
                    op.name
                );
                let back = dp_model::reencode(op.name, output, value.clone())
                    .expect("every operation has typed input and output")
                    .unwrap_or_else(|e| {
                        panic!(
                            "{} {} failed to decode {value}: {e}",
                            op.name,
                            if output { "output" } else { "input" }
                        )
                    });
                assert_eq!(back, value, "{} round trip changed the value", op.name);
                checked += 1;
            }
        }
    }
    assert!(checked >= 19 * 25, "only {checked} values checked");
}

#[test]
fn unknown_enum_values_are_kept() {
    let v = serde_json::json!({"taskId": "t", "taskStatus": "SOMETHING_NEW"});
    let back = dp_model::reencode("SetTaskStatus", false, v.clone())
        .unwrap()
        .unwrap();
    assert_eq!(back, v);
}
