//! The view is sorted by `(lamport, id)` and is a linear extension of causality.

mod common;

use std::collections::HashMap;

use bft_json_crdt::{OpId, Replica, SignedOp};
use common::*;
use proptest::prelude::*;

fn check_view(r: &Replica, ops: &[SignedOp]) -> Result<(), TestCaseError> {
    let by_id: HashMap<OpId, &SignedOp> = ops.iter().map(|o| (o.id(), o)).collect();
    let view: Vec<_> = r.view().collect();
    prop_assert_eq!(view.len(), r.view_len());
    for w in view.windows(2) {
        prop_assert!((w[0].lamport(), w[0].id()) < (w[1].lamport(), w[1].id()));
    }
    let pos: HashMap<OpId, usize> = view.iter().enumerate().map(|(i, o)| (o.id(), i)).collect();
    for (i, o) in view.iter().enumerate() {
        prop_assert!(r.in_view(&o.id()));
        let op = by_id[&o.id()];
        prop_assert!(o.matches(op), "what is kept is the op delivered");
        for d in op.deps() {
            prop_assert!(r.contains(d), "deps of a view op are held");
            if let Some(&j) = pos.get(d) {
                prop_assert!(j < i, "dep after dependent in the view");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn view_is_sorted_and_causal(h in history_strategy(24), seed in any::<u64>()) {
        let r = deliver(&h.ops, seed);
        check_view(&r, &h.ops)?;
    }

    #[test]
    fn view_is_sorted_and_causal_under_equivocation(h in forked_history_strategy(24), seed in any::<u64>()) {
        let r = deliver(&h.ops, seed);
        check_view(&r, &h.ops)?;
        // and so is every prefix of a causal delivery
        let mut p = Replica::default();
        for o in &h.ops {
            apply_all(&mut p, std::slice::from_ref(o));
            check_view(&p, &h.ops)?;
        }
    }
}
