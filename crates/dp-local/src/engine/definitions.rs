//! Definitions as the API returns them: validation findings in the wire shapes.
//!
//! The checks themselves live in `crate::definition`; this module only converts their results.

use super::*;

pub(super) fn findings_to_wire(
    f: definition::Findings,
) -> (Vec<ValidationError>, Vec<ValidationWarning>) {
    (
        f.errors
            .into_iter()
            .map(|(id, errors)| ValidationError {
                id: Some(id),
                errors: Some(errors),
            })
            .collect(),
        f.warnings
            .into_iter()
            .map(|(id, warnings)| ValidationWarning {
                id: Some(id),
                warnings: Some(warnings),
            })
            .collect(),
    )
}
