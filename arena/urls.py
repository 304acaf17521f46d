from django.urls import path

from arena import views

app_name = "arena"
urlpatterns = [
    path("", views.home, name="home"),
    path("arena/<slug:task>/", views.arena_page, name="arena"),
    path("arena/<slug:task>/battles", views.battle_new, name="battle-new"),
    path("arena/battles/<str:token>/vote", views.vote, name="vote"),
    path("arena/media/<str:media_token>", views.battle_media, name="battle-media"),
    path("arena/battles/<str:token>/source", views.battle_source, name="battle-source"),
    path("me/leaderboard/<slug:task>/", views.personal_board_page, name="personal-board"),
    path("maintainers/raters/", views.rater_flags_page, name="rater-flags"),
    path(
        "maintainers/raters/<int:flag_id>/review",
        views.rater_flag_review,
        name="rater-flag-review",
    ),
    path("leaderboard/<slug:task>/", views.leaderboard_page, name="leaderboard"),
    path("leaderboard/<slug:task>.json", views.leaderboard_json, name="leaderboard-json"),
    path("leaderboard/<slug:task>.csv", views.leaderboard_csv, name="leaderboard-csv"),
    path("models/<slug:slug>/", views.model_page, name="model"),
    path(
        "models/<slug:slug>/samples/<uuid:public_id>",
        views.model_sample_media,
        name="model-sample",
    ),
    path("samples/<uuid:public_id>/", views.sample_page, name="sample"),
    path("samples/<uuid:public_id>/media", views.sample_media, name="sample-media"),
    path("samples/<uuid:public_id>/source", views.sample_source, name="sample-source"),
    path("samples/<uuid:public_id>/manifest.json", views.sample_manifest, name="sample-manifest"),
    path("arena/battles/<str:token>/reveal/<str:side>", views.battle_sample, name="battle-sample"),
    path(
        "arena/battles/<str:token>/reveal/<str:side>/manifest.json",
        views.battle_sample,
        {"part": "manifest"},
        name="battle-sample-manifest",
    ),
    path(
        "arena/battles/<str:token>/reveal/<str:side>/media",
        views.battle_sample,
        {"part": "media"},
        name="battle-sample-media",
    ),
    path(
        "arena/battles/<str:token>/reveal/<str:side>/source",
        views.battle_sample,
        {"part": "source"},
        name="battle-sample-source",
    ),
    path("verify", views.verify_page, name="verify"),
]
