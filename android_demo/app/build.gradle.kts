plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "dev.metasr.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.metasr.demo"
        minSdk = 28 // Android 9: Vulkan 1.1 and java.time everywhere
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += listOf("arm64-v8a") }
    }

    buildTypes {
        release {
            isMinifyEnabled = false
            signingConfig = signingConfigs.getByName("debug") // a demo: sign release builds with the debug key
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }

    packaging {
        jniLibs {
            // The QNN plugin EP is registered by file path, so native libraries must be extracted to disk.
            useLegacyPackaging = true
            // ExecuTorch and ONNX Runtime both ship the NDK's C++ runtime.
            pickFirsts += "**/libc++_shared.so"
        }
    }
}

dependencies {
    implementation(libs.androidx.core.ktx)
    implementation(libs.androidx.activity.ktx)
    implementation(libs.camera.core)
    implementation(libs.camera.camera2)
    implementation(libs.camera.lifecycle)
    implementation(libs.camera.view)

    // A locally built AAR (e.g. with the Vulkan backend: EXECUTORCH_BUILD_VULKAN=ON) wins over Maven Central.
    val localExecuTorch = file("libs/executorch.aar")
    if (localExecuTorch.exists()) {
        implementation(files(localExecuTorch))
        implementation("com.facebook.soloader:soloader:0.10.5")
        implementation("com.facebook.fbjni:fbjni:0.7.0")
    } else {
        implementation(libs.executorch.android)
    }
    implementation(libs.onnxruntime.android)
    implementation(libs.onnxruntime.android.qnn)

    testImplementation(libs.junit)
    testImplementation(libs.orgjson) // the real org.json: android.jar's copy is a stub in JVM unit tests
}
