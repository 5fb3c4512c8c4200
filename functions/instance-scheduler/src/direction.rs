//! Which way a resource is moved: started or stopped.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Start,
    Stop,
}

impl Direction {
    /// The word a marker tag records (`start` or `stop`).
    pub fn word(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
        }
    }

    /// The direction that leaves a resource running (`true`) or stopped (`false`).
    pub fn towards(running: bool) -> Self {
        if running {
            Self::Start
        } else {
            Self::Stop
        }
    }
}
