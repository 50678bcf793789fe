//! What every event-sourced aggregate offers the write side: fold events,
//! decide commands. Synchronous and free of side effects by contract.

use crate::codec::EventSchema;
use crate::context::Context;

pub trait Aggregate: Default + Clone + Send + Sync + std::fmt::Debug {
    type Event: EventSchema + Clone + Send + Sync + std::fmt::Debug;
    type Command: Send + Sync;
    type Rejection: std::error::Error + Clone + Send + Sync + 'static;

    /// Apply one recorded event.
    fn apply(self, event: &Self::Event) -> Self;

    /// Fold a whole stream of decoded events from the empty state.
    fn replay<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::default(), Self::apply)
    }

    /// The events a command leads to, or why not. Empty: nothing to do.
    fn decide(
        &self,
        command: &Self::Command,
        ctx: &Context,
    ) -> Result<Vec<Self::Event>, Self::Rejection>;
}

impl Aggregate for crate::run::RunState {
    type Event = crate::run::RunEvent;
    type Command = crate::run::RunCommand;
    type Rejection = crate::run::Rejection;

    fn apply(self, event: &Self::Event) -> Self {
        self.evolve(event)
    }

    fn decide(
        &self,
        command: &Self::Command,
        ctx: &Context,
    ) -> Result<Vec<Self::Event>, Self::Rejection> {
        crate::run::decide(self, command, ctx)
    }
}
