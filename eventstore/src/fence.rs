//! A store whose every append is fenced by a lease: what the process
//! managers write with, so a deposed leader's decisions never land.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::{
    Appended, EventStore, ExpectedVersion, Fence, LogBatch, LogPosition, NewEvent, RecordedEvent,
    StoreError, StreamAppend,
};

#[derive(Debug, Clone)]
pub struct FencedStore {
    inner: Arc<dyn EventStore>,
    fence: Fence,
}

impl FencedStore {
    pub fn new(inner: Arc<dyn EventStore>, fence: Fence) -> Self {
        FencedStore { inner, fence }
    }
}

#[async_trait]
impl EventStore for FencedStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Appended, StoreError> {
        let append = StreamAppend {
            stream: stream.to_string(),
            expected,
            events: events.to_vec(),
        };
        self.inner
            .append_fenced(&self.fence, std::slice::from_ref(&append))
            .await?
            .pop()
            .ok_or_else(|| StoreError::Invalid("no result for the append".into()))
    }

    async fn append_many(&self, appends: &[StreamAppend]) -> Result<Vec<Appended>, StoreError> {
        self.inner.append_fenced(&self.fence, appends).await
    }

    async fn append_fenced(
        &self,
        fence: &Fence,
        appends: &[StreamAppend],
    ) -> Result<Vec<Appended>, StoreError> {
        self.inner.append_fenced(fence, appends).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from_version).await
    }

    async fn read_streams(
        &self,
        streams: &[String],
    ) -> Result<Vec<Vec<RecordedEvent>>, StoreError> {
        self.inner.read_streams(streams).await
    }

    async fn read_all(&self, after: LogPosition, limit: usize) -> Result<LogBatch, StoreError> {
        self.inner.read_all(after, limit).await
    }

    async fn head_position(&self) -> Result<i64, StoreError> {
        self.inner.head_position().await
    }

    fn wakeups(&self) -> watch::Receiver<u64> {
        self.inner.wakeups()
    }

    fn counts(&self) -> crate::StoreCounts {
        self.inner.counts()
    }
}
