//! The reports' words in English and Russian: report titles and
//! descriptions, column and summary names, the page's own words.

/// `(key, English, Russian)`.
const LABELS: &[(&str, &str, &str)] = &[
    // Pages.
    ("reports", "Reports", "Отчёты"),
    ("from", "From", "С"),
    ("to", "To (inclusive)", "По (включительно)"),
    ("queue", "Queue", "Очередь"),
    ("agent", "Agent", "Оператор"),
    ("show", "Show", "Показать"),
    ("all", "all", "все"),
    ("csv", "CSV", "CSV"),
    ("json", "JSON", "JSON"),
    ("summary", "Summary", "Итого"),
    (
        "no_rows",
        "Nothing in this range.",
        "За этот период ничего нет.",
    ),
    ("yes", "yes", "да"),
    ("no", "no", "нет"),
    (
        "error",
        "The report cannot be shown",
        "Отчёт нельзя показать",
    ),
    ("back", "All reports", "Все отчёты"),
    ("formula", "Service-level formula", "Формула уровня сервиса"),
    ("interval", "Interval", "Интервал"),
    ("hour", "hour", "час"),
    ("day", "day", "день"),
    ("times_in", "Times in", "Время в зоне"),
    ("by_agent", "Per agent", "По операторам"),
    // Reports.
    ("calls_by_queue", "Calls by queue", "Звонки по очередям"),
    ("calls_by_agent", "Calls by agent", "Звонки по операторам"),
    ("calls_by_hour", "Calls by hour of day", "Звонки по часам"),
    ("agent_activity", "Agent activity", "Работа операторов"),
    ("missed", "Missed calls", "Пропущенные звонки"),
    ("new_callers", "New callers", "Новые абоненты"),
    ("outbound", "Outbound calls", "Исходящие звонки"),
    ("service_level", "Service level", "Уровень сервиса"),
    (
        "calls_by_queue_about",
        "Offered, answered and unanswered queue calls per queue.",
        "Поступившие, отвеченные и неотвеченные звонки по очередям.",
    ),
    (
        "calls_by_agent_about",
        "Calls each agent answered and let ring (ring-no-answer).",
        "Звонки, которые оператор принял или не взял (звонил без ответа).",
    ),
    (
        "calls_by_hour_about",
        "Queue calls by the hour of day they came in.",
        "Звонки в очереди по часу поступления.",
    ),
    (
        "agent_activity_about",
        "Logins, pauses with reasons, calls, talk time and occupancy.",
        "Входы, паузы с причинами, звонки, время разговоров и загрузка.",
    ),
    (
        "missed_about",
        "Every missed-call episode: called back, returned, open or expired.",
        "Каждый пропущенный: перезвонили, абонент дозвонился сам, открыт или истёк.",
    ),
    (
        "new_callers_about",
        "First-time callers and whether they were answered.",
        "Позвонившие впервые и ответили ли им.",
    ),
    (
        "outbound_about",
        "Outbound calls per agent and whom they called.",
        "Исходящие звонки операторов и кому они звонили.",
    ),
    (
        "service_level_about",
        "Service level per hour or day under a chosen formula.",
        "Уровень сервиса по часам или дням по выбранной формуле.",
    ),
    (
        "occupancy_formula",
        "Occupancy = talk time / (logged-in time − paused time).",
        "Загрузка = время разговоров / (время в системе − время на паузе).",
    ),
    // Columns and figures.
    ("hour_of_day", "Hour", "Час"),
    ("agent_name", "Name", "Имя"),
    ("offered", "Offered", "Поступило"),
    ("answered", "Answered", "Отвечено"),
    ("unanswered", "Unanswered", "Не отвечено"),
    ("abandoned", "Abandoned", "Брошено"),
    ("short_abandoned", "of which short", "из них коротких"),
    ("timeouts", "Timed out", "По тайм-ауту"),
    ("exit_empty", "Left: no agents", "Выход: нет операторов"),
    ("exit_key", "Left by key", "Выход по кнопке"),
    ("waiting", "Still waiting", "Ещё ждут"),
    ("answer_rate", "Answer rate", "Доля отвеченных"),
    ("asa_s", "Avg. wait to answer", "Ср. ожидание ответа"),
    ("avg_talk_s", "Avg. talk", "Ср. разговор"),
    ("talk_s", "Talk time", "Время разговоров"),
    ("ring_no_answer", "Rang, not answered", "Звонил без ответа"),
    ("transferred", "Transferred", "Переведено"),
    ("sessions", "Logins", "Входов"),
    ("logged_in_s", "Logged in", "В системе"),
    ("pauses", "Pauses", "Пауз"),
    ("paused_s", "Paused", "На паузе"),
    ("pause_reasons", "Pause reasons", "Причины пауз"),
    ("calls", "Calls", "Звонков"),
    ("calls_in", "Inbound", "Входящих"),
    ("calls_out", "Outbound", "Исходящих"),
    ("occupancy", "Occupancy", "Загрузка"),
    ("caller", "Caller", "Абонент"),
    ("caller_name", "Directory name", "Имя в справочнике"),
    ("opened_at", "Missed at", "Пропущен"),
    ("last_missed_at", "Last missed", "Последний пропуск"),
    ("missed_count", "Missed calls", "Пропущено звонков"),
    (
        "callback_attempts",
        "Callback attempts",
        "Попыток перезвонить",
    ),
    ("status", "Status", "Статус"),
    ("resolved_at", "Resolved at", "Закрыт"),
    ("resolved_by", "Resolving call", "Закрывший звонок"),
    ("resolved_by_agent", "Resolved by", "Кто закрыл"),
    (
        "time_to_callback_s",
        "Time to callback",
        "Время до перезвона",
    ),
    ("episodes", "Episodes", "Эпизодов"),
    ("open", "Open", "Открыто"),
    ("called_back", "Called back", "Перезвонили"),
    ("returned", "Caller got through", "Дозвонился сам"),
    ("expired", "Expired", "Истекло"),
    ("not_called_back", "Never called back", "Не перезвонили"),
    (
        "not_called_back_share",
        "Share never called back",
        "Доля без перезвона",
    ),
    (
        "avg_time_to_callback_s",
        "Avg. time to callback",
        "Ср. время до перезвона",
    ),
    ("first_seen_at", "First call", "Первый звонок"),
    (
        "first_call_answered",
        "First call answered",
        "Первый звонок отвечен",
    ),
    ("first_agent", "Answered by", "Ответил"),
    ("first_answered_at", "First answered", "Впервые отвечен"),
    (
        "answered_by_range_end",
        "Answered by the end of the range",
        "Отвечен до конца периода",
    ),
    ("new_callers_count", "New callers", "Новых абонентов"),
    (
        "first_call_answered_share",
        "Share answered at first call",
        "Доля отвеченных с первого раза",
    ),
    ("callee", "Number called", "Номер"),
    ("callee_name", "Directory name", "Имя в справочнике"),
    ("last_at", "Last call", "Последний звонок"),
    ("numbers", "Numbers called", "Номеров"),
    ("interval_start", "Interval", "Интервал"),
    ("answered_within", "Answered in time", "Отвечено вовремя"),
    ("abandoned_within", "Abandoned in time", "Брошено вовремя"),
    ("service_level_value", "Service level", "Уровень сервиса"),
    (
        "sla_threshold_s",
        "Answer within (s)",
        "Ответ в течение (с)",
    ),
];

/// The word for `key` (`ru`: Russian); the key itself when there is none.
pub fn label(key: &str, ru: bool) -> String {
    LABELS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map_or(key, |(_, en, r)| if ru { r } else { en })
        .to_string()
}

/// A missed-call episode's status, in words.
pub fn status(s: &str, ru: bool) -> String {
    match s {
        "open" | "called_back" | "returned" | "expired" => label(s, ru),
        other => other.to_string(),
    }
}
