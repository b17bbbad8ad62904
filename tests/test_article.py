from aelib.article import ARTICLE_LOSSES, article_losses


def test_article_losses_for_reported_sizes():
    assert article_losses(8)[0] == 0.0514 and article_losses(8)[-1] == 0.0270
    assert article_losses(4, epochs=3) == [0.0612, 0.0509, 0.0481]
    # the article's curves fall every epoch
    for losses in ARTICLE_LOSSES.values():
        assert all(a > b for a, b in zip(losses, losses[1:]))


def test_article_losses_absent():
    assert article_losses(16) is None
    assert article_losses(8, epochs=20) is None
    assert article_losses(8) is not ARTICLE_LOSSES[8]  # a copy: callers cannot change it
