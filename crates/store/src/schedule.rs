//! When schedule triggers last fired.

use rusqlite::{OptionalExtension as _, params};

use crate::{Result, Store};

impl Store {
    pub fn schedule_last_fire(&self, blueprint_id: &str, trigger_id: &str) -> Result<Option<i64>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT last_fire FROM schedule_state WHERE blueprint_id = ?1 AND trigger_id = ?2")?
                .query_row([blueprint_id, trigger_id], |r| r.get(0))
                .optional()?)
        })
    }

    pub async fn set_schedule_last_fire(
        &self,
        blueprint_id: String,
        trigger_id: String,
        at: i64,
    ) -> Result<()> {
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO schedule_state (blueprint_id, trigger_id, last_fire) VALUES (?1, ?2, ?3)
                 ON CONFLICT (blueprint_id, trigger_id) DO UPDATE SET last_fire = max(last_fire, excluded.last_fire)",
            )?
            .execute(params![blueprint_id, trigger_id, at])?;
            Ok(())
        })
        .await
    }
}
