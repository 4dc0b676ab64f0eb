pub mod health;
pub mod openai;
