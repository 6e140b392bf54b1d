//! Which shard queue a routing key (a Clerk user id) belongs to.
//!
//! The mapping must never change between releases, or one user's events
//! would be split across queues. It is FNV-1a (64 bit) of the key's bytes fed
//! into Lamping and Veach's jump consistent hash: stable, fast, and when the
//! number of shards grows from K to K+n only the keys that move to the new
//! shards change queue.

/// The shard (0-based, below `shards`) that `key` is routed to.
///
/// `shards` of 0 is treated as 1, so the function is total.
pub fn shard_for(key: &str, shards: u16) -> u16 {
    let buckets = i64::from(shards.max(1));
    let mut hash = fnv1a_64(key.as_bytes());
    let mut bucket: i64 = -1;
    let mut next: i64 = 0;
    while next < buckets {
        bucket = next;
        hash = hash.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // (b + 1) * 2^31 / ((hash >> 33) + 1), computed in floating point as
        // the paper does; the result is always at most 2^31 * (b + 1).
        let divisor = ((hash >> 33) + 1) as f64;
        next = ((bucket + 1) as f64 * ((1_u64 << 31) as f64 / divisor)) as i64;
    }
    // bucket is in 0..buckets and buckets fits a u16.
    u16::try_from(bucket).unwrap_or(0)
}

/// The 64-bit FNV-1a hash: stable across versions and platforms.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn fnv_matches_the_reference_values() {
        assert_eq!(fnv1a_64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// Pinned values: if these change, deployed users would change queue.
    #[test]
    fn known_users_keep_their_shard() {
        let pinned = [
            ("user_29w83sxmDNGwOuEthce5gg56FcC", 8, 1),
            ("user_29w83sxmDNGwOuEthce5gg56FcC", 1000, 541),
            ("user_2xtKOmOKFZcYQ8kBGzxhPlrgBJv", 8, 0),
            ("user_2xtKOmOKFZcYQ8kBGzxhPlrgBJv", 16, 14),
            ("msg_p5jXN8AQM9LWM0D4loKWxJek", 8, 5),
            ("", 16, 13),
        ];
        for (key, shards, expected) in pinned {
            assert_eq!(shard_for(key, shards), expected, "{key} over {shards}");
        }
        let spread: std::collections::BTreeSet<u16> = (0..200)
            .map(|i| shard_for(&format!("user_{i}"), 8))
            .collect();
        assert_eq!(spread.len(), 8, "200 users should reach all 8 shards");
    }

    proptest! {
        #[test]
        fn shard_is_in_range_and_deterministic(key in ".{0,64}", shards in 0u16..2000) {
            let shard = shard_for(&key, shards);
            prop_assert!(shard < shards.max(1));
            prop_assert_eq!(shard, shard_for(&key, shards));
        }

        /// Growing from K to K+1 shards moves a key only onto the new shard.
        #[test]
        fn growing_moves_keys_only_to_the_new_shard(key in "user_[A-Za-z0-9]{27}", shards in 1u16..512) {
            let before = shard_for(&key, shards);
            let after = shard_for(&key, shards + 1);
            prop_assert!(after == before || after == shards);
        }
    }
}
