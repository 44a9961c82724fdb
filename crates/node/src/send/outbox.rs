//! The offers a sender has made and not yet seen ended: what each recipient may ask about its own offer
//! (the list, the text) and where its end is told. Asked about by anyone else, an offer does not exist.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use proto::{NodeId, OfferId};
use tokio::sync::watch;

use crate::server::spread::Downloader;

/// The offers made, by id; cloned freely (the clones are one set).
#[derive(Clone, Default)]
pub(crate) struct Outbox(Arc<Mutex<HashMap<OfferId, Made>>>);

struct Made {
    to: NodeId,
    /// The encoded catalogue of its files, their names the paths they go to.
    list: Arc<Vec<u8>>,
    text: Arc<String>,
    /// Set once the recipient tells the end: whether it has every file.
    ended: watch::Sender<Option<bool>>,
}

impl Outbox {
    /// Holds offer `id` for `to`; the receiver says when and how `to` ended it.
    pub(crate) fn add(&self, id: OfferId, to: NodeId, list: Vec<u8>, text: String) -> watch::Receiver<Option<bool>> {
        let (ended, told) = watch::channel(None);
        self.lock().insert(id, Made { to, list: Arc::new(list), text: Arc::new(text), ended });
        told
    }

    /// The list of offer `id`, if `who` is its recipient.
    pub(crate) fn list(&self, who: Downloader, id: OfferId) -> Option<Arc<Vec<u8>>> {
        self.find(who, id, |made| made.list.clone())
    }

    /// The text of offer `id`, if `who` is its recipient.
    pub(crate) fn text(&self, who: Downloader, id: OfferId) -> Option<Arc<String>> {
        self.find(who, id, |made| made.text.clone())
    }

    /// The recipient `who` ended offer `id`; whether it is that offer's recipient.
    pub(crate) fn ended(&self, who: Downloader, id: OfferId, fetched: bool) -> bool {
        self.find(who, id, |made| made.ended.send_replace(Some(fetched))).is_some()
    }

    fn find<T>(&self, who: Downloader, id: OfferId, take: impl FnOnce(&Made) -> T) -> Option<T> {
        let Downloader::Proven(node) = who else { return None };
        self.lock().get(&id).filter(|made| made.to == node).map(take)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<OfferId, Made>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
