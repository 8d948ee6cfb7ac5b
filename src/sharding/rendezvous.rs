//! Rendezvous (highest-random-weight) hashing: each virtual shard goes to the live
//! replica with the highest score for it. Every replica computes the same division from
//! the same list of live replicas, and when a replica joins or leaves only the shards it
//! wins or held move.

use std::collections::BTreeSet;

use md5::{Digest, Md5};

use super::VIRTUAL_SHARDS;

/// The score of `replica` for `shard`: the first eight bytes of the MD5 of
/// `"<replica>/<shard>"`, stable across processes and versions.
pub fn score(replica: &str, shard: u16) -> u64 {
    let digest = Md5::digest(format!("{replica}/{shard}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

/// The replica `shard` belongs to among `replicas` (ties, never seen in practice, go to
/// the greater id); `None` when there is none.
pub fn owner(shard: u16, replicas: &[String]) -> Option<&str> {
    replicas
        .iter()
        .max_by(|a, b| score(a, shard).cmp(&score(b, shard)).then_with(|| a.cmp(b)))
        .map(String::as_str)
}

/// The shards `me` should hold when `replicas` are live.
pub fn assigned(me: &str, replicas: &[String]) -> BTreeSet<u16> {
    (0..VIRTUAL_SHARDS)
        .filter(|&shard| owner(shard, replicas) == Some(me))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("replica-{i:03}")).collect()
    }

    #[test]
    fn every_shard_has_exactly_one_owner_and_the_division_is_even() {
        let replicas = names(3);
        let sets: Vec<BTreeSet<u16>> = replicas.iter().map(|r| assigned(r, &replicas)).collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        assert_eq!(total, usize::from(VIRTUAL_SHARDS));
        for (i, a) in sets.iter().enumerate() {
            for b in &sets[i + 1..] {
                assert!(a.is_disjoint(b));
            }
            // 256 / 3 ≈ 85: each within ±30 of it.
            assert!(
                (55..=115).contains(&a.len()),
                "{:?}",
                sets.iter().map(BTreeSet::len).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn a_joining_replica_takes_shards_only_for_itself() {
        let before = names(3);
        let mut after = before.clone();
        after.push("replica-new".into());
        let mut moved = 0;
        for shard in 0..VIRTUAL_SHARDS {
            let (old, new) = (owner(shard, &before), owner(shard, &after));
            if old != new {
                assert_eq!(
                    new,
                    Some("replica-new"),
                    "shard {shard} moved between old replicas"
                );
                moved += 1;
            }
        }
        // About a quarter moves: 64 ± 30.
        assert!((34..=94).contains(&moved), "{moved}");
    }

    #[test]
    fn a_leaving_replica_gives_only_its_own_shards_away() {
        let before = names(4);
        let after: Vec<String> = before[..3].to_vec();
        for shard in 0..VIRTUAL_SHARDS {
            let old = owner(shard, &before).unwrap();
            if old != "replica-003" {
                assert_eq!(owner(shard, &after), Some(old));
            }
        }
        assert_eq!(owner(0, &[]), None);
        assert_eq!(
            assigned("replica-000", &before[..1]).len(),
            usize::from(VIRTUAL_SHARDS)
        );
    }
}
