//! Group commit of reports on SQLite: one write transaction for the whole
//! batch, each report through the one-job path in order. Statements cost
//! microseconds in-process; the commit is what a batch shares.

use super::{Lite, Tx, lock_job};
use crate::error::Error;
use crate::model::Resolution;
use crate::store::batch::{self, Answers, ReportItem};
use crate::store::resolve::Ending;

impl Lite {
    /// Records many reports in one transaction; see [`crate::Store::report_many`].
    pub(crate) async fn report_many(&self, items: Vec<ReportItem>) -> Result<Answers, Error> {
        let mut tx = self.begin().await?;
        let mut answers = Vec::with_capacity(items.len());
        for item in items {
            match self.report_one(&mut tx, item).await {
                Err(err) if batch::breaks_batch(&err) => return Err(err),
                answer => answers.push(answer),
            }
        }
        self.commit(tx).await?;
        Ok(answers)
    }

    async fn report_one(&self, tx: &mut Tx, item: ReportItem) -> Result<Resolution, Error> {
        let job = lock_job(tx, item.job_id).await?;
        if !batch::is_current(&job, item.token) {
            return super::finish::answer_stale(tx, &job, item.token, item.call).await;
        }
        self.finish(tx, &job, Ending::reported(item.call, item.report))
            .await
    }
}
