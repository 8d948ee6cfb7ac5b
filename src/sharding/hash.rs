//! The shard hash of a user id: static sharding keeps `hash(user_id) mod SHARD_COUNT`,
//! automatic sharding places a user in virtual shard `hash(user_id) mod 256`.
//!
//! The hash is the first four bytes of the MD5 of the user id's hyphenated text, read
//! big-endian — computable in SQL (`md5(user_id::text)`) so the loader filters in
//! Postgres, and stable across languages and versions, unlike Postgres' internal
//! `hashtext`.

use md5::{Digest, Md5};
use uuid::Uuid;

/// The SQL expression of [`shard_hash`] for a `user_id` column.
pub const SHARD_HASH_SQL: &str = "(('x' || substr(md5(user_id::text), 1, 8))::bit(32)::bigint)";

/// The shard hash of a user id.
pub fn shard_hash(user_id: Uuid) -> u32 {
    let digest = Md5::digest(user_id.hyphenated().to_string().as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Whether `user_id`'s strategies belong to shard `index` of `count`.
pub fn owns(user_id: Uuid, index: u32, count: u32) -> bool {
    count <= 1 || shard_hash(user_id) % count == index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_users() {
        let users: Vec<Uuid> = (0..3000).map(|_| Uuid::new_v4()).collect();
        let mut counts = [0usize; 3];
        for user in &users {
            let owners: Vec<u32> = (0..3).filter(|&i| owns(*user, i, 3)).collect();
            assert_eq!(owners.len(), 1, "exactly one replica owns a user");
            counts[owners[0] as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        assert!(users.iter().all(|u| owns(*u, 0, 1)));
    }

    #[test]
    fn the_hash_is_md5_of_the_hyphenated_id() {
        // md5("00000000-0000-0000-0000-000000000000") = 9f89c84a…
        assert_eq!(shard_hash(Uuid::nil()), 0x9f89_c84a);
    }
}
