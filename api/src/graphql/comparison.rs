//! A completed run beside the earlier run it is measured against: which
//! tests it broke, fixed or fails differently (`Run.comparison`).

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use sp_projections::queries::{self, ComparisonRow};

use super::types::Run;
use super::{internal, services};

/// How a test's outcome relates to the reference run's, most urgent first.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "TestClass", remote = "sp_domain::comparison::Class")]
pub enum TestClass {
    /// Passes in the reference, fails here.
    Broken,
    /// Fails in both, with other outputs or another exit code.
    FailingDifferently,
    /// Fails in the reference, passes here.
    Fixed,
    /// Fails in both in the same way (drift someone should approve or fix).
    FailingIdentically,
    /// Not in the reference run's scope.
    New,
    /// There is no reference run: nothing can be said.
    NoReference,
    UnchangedPass,
}

/// Which earlier run a comparison is against.
#[derive(Debug, Enum, Copy, Clone, Eq, PartialEq)]
pub enum ReferenceKind {
    /// The same commit's previous finished run (for a rerun or an
    /// operator's run).
    SameCommit,
    /// The closest ancestor commit (as GitHub named them) with a finished run.
    Ancestor,
    /// The latest finished run of the base branch.
    Base,
}

/// The run a comparison is measured against.
#[derive(Debug)]
pub struct Reference {
    kind: ReferenceKind,
    run_id: String,
    commit: String,
}

#[Object]
impl Reference {
    async fn kind(&self) -> ReferenceKind {
        self.kind
    }

    async fn run_id(&self) -> ID {
        ID(self.run_id.clone())
    }

    async fn commit(&self) -> &str {
        &self.commit
    }

    async fn run(&self, ctx: &Context<'_>) -> Result<Option<Run>> {
        let row = queries::get_run(&services(ctx)?.db.pool, &self.run_id)
            .await
            .map_err(internal)?;
        Ok(row.map(Run::from))
    }
}

/// The tests of one class.
#[derive(Debug, SimpleObject)]
pub struct ClassGroup {
    pub class: TestClass,
    /// The class in words ("broken here").
    pub label: String,
    pub count: i32,
    /// The tests' ids (empty unless asked for).
    pub tests: Vec<String>,
}

#[derive(Debug)]
pub struct Comparison(ComparisonRow);

#[Object]
impl Comparison {
    /// The run measured against; null when there is none (see `note`).
    async fn reference(&self) -> Option<Reference> {
        let row = &self.0;
        let kind = match sp_projections::ReferenceKind::parse(row.reference_kind.as_deref()?)? {
            sp_projections::ReferenceKind::SameCommit => ReferenceKind::SameCommit,
            sp_projections::ReferenceKind::Ancestor => ReferenceKind::Ancestor,
            sp_projections::ReferenceKind::Base => ReferenceKind::Base,
        };
        Some(Reference {
            kind,
            run_id: row.reference_run.clone()?,
            commit: row.reference_commit.clone()?,
        })
    }

    /// Which reference was used, in words, or why there is none.
    async fn note(&self) -> &str {
        &self.0.reference_note
    }

    /// The classes that have tests, most urgent first.
    async fn classes(&self, ctx: &Context<'_>) -> Result<Vec<ClassGroup>> {
        let with_tests = ctx.look_ahead().field("tests").exists();
        let tests = if with_tests {
            self.0.tests().map_err(internal)?
        } else {
            Vec::new()
        };
        Ok(self
            .0
            .counts()
            .into_iter()
            .map(|(class, count)| ClassGroup {
                class: class.into(),
                label: class.label().to_string(),
                count: i32::try_from(count).unwrap_or(i32::MAX),
                tests: tests
                    .iter()
                    .filter(|(_, c)| *c == class)
                    .map(|(id, _)| id.clone())
                    .collect(),
            })
            .collect())
    }

    /// How many tests this run broke (pass in the reference, fail here).
    async fn broken(&self) -> i32 {
        self.0.broken
    }

    /// How many tests this run fixed.
    async fn fixed(&self) -> i32 {
        self.0.fixed
    }
}

/// The comparison of a run, once it completed.
pub async fn of(ctx: &Context<'_>, run: &ID) -> Result<Option<Comparison>> {
    let row = queries::comparison(&services(ctx)?.db.pool, run)
        .await
        .map_err(internal)?;
    Ok(row.map(Comparison))
}
