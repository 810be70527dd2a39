//! Per-thread copies of hot records, so that a [`Principal`](super::Principal)
//! keeps its record without writing a cache line other cores read.
//!
//! A principal owns its record (`Arc<KeyRecord>`). Cloning the store's `Arc`
//! writes the record's reference count: with one key authenticated on two
//! cores at once, that count's cache line passes between them on every
//! request, and two threads do less than one. So each thread keeps a few
//! copies of the records it authenticates most: a record seen twice running
//! in its slot is copied once, and later requests clone the copy, whose count
//! only this thread writes (unless a principal is dropped on another thread).
//!
//! A copy is used only for the very allocation it was made from: the store
//! never changes a record inside its `Arc` (a write puts a new `Arc` in its
//! place), and the copy holds a [`Weak`] to its source, so that allocation's
//! address cannot be reused for another record while the copy exists. A
//! disable, a role change or a delete therefore never meets an old copy: the
//! lookup after it lends a different `Arc`, which the copy does not match.
//! The copies hold no secret (records keep digests, never keys).

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use crate::record::KeyRecord;

/// Slots per thread (direct-mapped by the record's address).
const SLOTS: usize = 16;

struct Slot {
    /// The address last seen in this slot, before any copy is made.
    seen: usize,
    /// The copy, with the address of the allocation it copies (compared as
    /// a number: cheaper than `Weak::as_ptr`) and a `Weak` that keeps that
    /// address from being reused while the copy lives.
    copy: Option<(usize, Weak<KeyRecord>, Arc<KeyRecord>)>,
}

impl Slot {
    const EMPTY: Slot = Slot {
        seen: 0,
        copy: None,
    };
}

thread_local! {
    // `const`: no lazy initialisation to test on every request.
    static COPIES: RefCell<[Slot; SLOTS]> = const { RefCell::new([Slot::EMPTY; SLOTS]) };
}

/// The record to keep in a principal: this thread's copy of `record` when it
/// has one (made when the same record came twice running to its slot),
/// otherwise a clone of the store's `Arc`. Either way the same record.
#[inline]
pub(super) fn keep(record: &Arc<KeyRecord>) -> Arc<KeyRecord> {
    let addr = Arc::as_ptr(record) as usize;
    // Records are larger than 64 bytes: the low bits say little.
    let i = (addr >> 6) % SLOTS;
    COPIES
        .try_with(|copies| {
            let Ok(mut copies) = copies.try_borrow_mut() else {
                return record.clone();
            };
            let slot = &mut copies[i];
            if let Some((source, _, copy)) = &slot.copy {
                if *source == addr {
                    return copy.clone();
                }
            }
            if slot.seen != addr {
                slot.seen = addr;
                return record.clone();
            }
            // Twice running: copy it (one allocation, once).
            let copy = Arc::new(KeyRecord::clone(record));
            slot.copy = Some((addr, Arc::downgrade(record), copy.clone()));
            copy
        })
        // The thread is ending: no copies any more.
        .unwrap_or_else(|_| record.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::KeyHasher;
    use crate::key::KeyKind;
    use crate::record::KeyId;
    use crate::store::record_for_tests;

    fn record(n: u64) -> Arc<KeyRecord> {
        let digest = KeyHasher::sha256().digest(&n.to_le_bytes());
        Arc::new(record_for_tests(
            KeyId::from_u64(n),
            "acme",
            KeyKind::General,
            digest,
        ))
    }

    #[test]
    fn a_record_seen_twice_running_is_copied_once_and_the_copy_reused() {
        let r = record(1);
        let first = keep(&r);
        assert!(Arc::ptr_eq(&first, &r), "first sight: the store's Arc");
        let second = keep(&r);
        assert!(!Arc::ptr_eq(&second, &r), "second: this thread's copy");
        assert_eq!(*second, *r, "the copy is the same record");
        let third = keep(&r);
        assert!(Arc::ptr_eq(&third, &second), "later: the same copy");
        assert_eq!(Arc::strong_count(&r), 2, "the copy holds no strong count");
    }

    #[test]
    fn a_replaced_record_never_gets_the_old_copy() {
        let old = record(2);
        keep(&old);
        let copy = keep(&old);
        // The store writes: a new Arc with a changed record takes its place.
        let mut changed = (*old).clone();
        changed.description = "disabled now".into();
        let new = Arc::new(changed);
        drop(old);
        let kept = keep(&new);
        assert_eq!(kept.description.as_ref(), "disabled now");
        assert!(!Arc::ptr_eq(&kept, &copy));
        assert_eq!(*keep(&new), *new);
    }

    #[test]
    fn another_thread_has_copies_of_its_own() {
        let r = record(3);
        keep(&r);
        let mine = keep(&r);
        let theirs = std::thread::scope(|s| {
            s.spawn(|| {
                keep(&r);
                keep(&r)
            })
            .join()
            .unwrap()
        });
        assert!(!Arc::ptr_eq(&mine, &theirs));
        assert_eq!(*mine, *theirs);
    }
}
