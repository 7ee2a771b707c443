from t2fsnn.experiments import experiment


def test_prepare_caps_images_at_the_training_set():
    exp = experiment.prepare("mnist_subset", "mnist_cnn", epochs=1, lr=0.05, batch_size=64, seed=0, train_limit=200,
                             calibration_limit=500, percentile=99.9, test_limit=50, go_train_limit=1000,
                             with_go_images=True, device="cpu")
    assert len(exp.x_go) == 200  # never more than the ANN was trained on
    assert len(exp.x_test) == len(exp.y_test) == 50
    assert exp.net.input_shape == (1, 28, 28)
    assert 0.0 <= exp.ann_accuracy <= 100.0
    assert experiment.prepare("mnist_subset", "mnist_cnn", 1, 0.05, 64, 0, 200, 100, 99.9, 10).x_go is None
